"""The ONNX embedder reproduces sentence-transformers' vectors (the reference).

Runs offline: the ONNX graph is exported once per session into a temporary cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from headrace.embedding.base import Vectors
from headrace.embedding.minilm import MiniLMEmbedder, load_minilm_tokenizer
from headrace.embedding.onnx_export import Variant, ensure_onnx_model
from headrace.embedding.reference import MiniLMTorchEmbedder

pytestmark = pytest.mark.model

PARITY = 0.9999
LONG_TEXT = (
    "Incremental indexing keeps a searchable store in step with folders of changing files; "
    "each chunk is fingerprinted, embedded once, and replaced only when its content moves. "
    "Crash-safe ledgers record progress after the sink acknowledges every vector."
)
LONG_WORDS = LONG_TEXT.split()


def text_of_tokens(count: int) -> str:
    """A text that tokenises to exactly ``count`` tokens, [CLS] and [SEP] included."""
    tokenizer = load_minilm_tokenizer()
    words: list[str] = []
    while len(tokenizer.encode(" ".join(words)).ids) < count:
        words.append(LONG_WORDS[len(words) % len(LONG_WORDS)])
    while len(tokenizer.encode(" ".join(words)).ids) > count:
        words.pop()
    while len(tokenizer.encode(" ".join(words)).ids) < count:
        words.append("a")
    return " ".join(words)


TEXTS = [
    "",
    "hello",
    "A man is playing a guitar.",
    "The quick brown fox jumps over the lazy dog.",
    "Quarterly revenue rose 12% to $4.2bn, beating analysts' forecasts.",
    "def embed(texts): return model.encode(texts, normalize_embeddings=True)",
    "SELECT id, name FROM users WHERE created_at > '2024-01-01';",
    "Les modèles de langue transforment le texte en vecteurs.",
    "東京は日本の首都です。",
    "Ünïcödé, émojis 🚀 and — dashes… all “quoted”.",
    "   leading and trailing whitespace   ",
    "line one\nline two\n\tindented line three",
    "ERROR 2024-05-01T12:00:00Z worker-3 timeout after 30s (retry 2/5)",
    "https://example.com/path?query=value&other=1#fragment",
    "The mitochondria is the powerhouse of the cell.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    " ".join(["repeat"] * 60),
    " ".join(LONG_WORDS * 2),
    text_of_tokens(250),
    text_of_tokens(256),
]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def reference_vectors() -> Vectors:
    return MiniLMTorchEmbedder().embed(TEXTS)


def cosines(a: Vectors, b: Vectors) -> Vectors:
    result: Vectors = (a * b).sum(axis=1)
    return result


def test_texts_cover_the_limit() -> None:
    tokenizer = load_minilm_tokenizer()
    lengths = [len(tokenizer.encode(text).ids) for text in TEXTS]
    assert 250 in lengths
    assert max(lengths) == 256


@pytest.mark.parametrize("variant", ["fp32", "fp32-opt"])
def test_onnx_matches_reference(
    variant: Variant, model_cache: Path, reference_vectors: Vectors
) -> None:
    embedder = MiniLMEmbedder(variant=variant, cache_dir=model_cache, batch_size=4)
    vectors = embedder.embed(TEXTS)
    assert vectors.shape == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    worst = cosines(vectors, reference_vectors).min()
    assert worst >= PARITY, f"{variant}: min cosine {worst}"


def test_order_and_batching_do_not_change_vectors(model_cache: Path) -> None:
    embedder = MiniLMEmbedder(cache_dir=model_cache)
    together = embedder.embed(TEXTS)
    alone = np.vstack([embedder.embed([text]) for text in TEXTS])
    assert cosines(together, alone).min() >= 0.99999
    shuffled = list(reversed(TEXTS))
    np.testing.assert_allclose(embedder.embed(shuffled)[::-1], together, atol=1e-5)


def test_paraphrase_beats_unrelated(model_cache: Path) -> None:
    anchor, paraphrase, unrelated = MiniLMEmbedder(cache_dir=model_cache).embed(
        [
            "A man is playing a guitar.",
            "Someone is strumming a guitar.",
            "The central bank raised interest rates again.",
        ]
    )
    assert float(anchor @ paraphrase) > 0.6
    assert float(anchor @ paraphrase) > float(anchor @ unrelated) + 0.3


def test_int8_is_close_but_distinct(model_cache: Path, reference_vectors: Vectors) -> None:
    embedder = MiniLMEmbedder(variant="int8", cache_dir=model_cache)
    assert embedder.model_id.endswith("#int8")
    similarity = cosines(embedder.embed(TEXTS), reference_vectors)
    assert similarity.min() >= 0.9
    assert similarity.mean() >= 0.97


def test_cache_env_variable_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADRACE_CACHE_DIR", str(tmp_path))
    path = ensure_onnx_model()
    assert path.parent == tmp_path / "models"
    assert MiniLMEmbedder().embed(["hello"]).shape == (1, 384)
    assert [p.name for p in path.parent.iterdir()] == [path.name]


@pytest.mark.slow
def test_concurrent_exports_publish_one_complete_file(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; "
        "from headrace.embedding.onnx_export import ensure_onnx_model; "
        "print(ensure_onnx_model(Path(sys.argv[1])))"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=240) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    paths = {out.strip() for out, _ in outputs}
    assert len(paths) == 1
    assert [p.name for p in tmp_path.iterdir()] == [Path(paths.pop()).name]
    vectors = MiniLMEmbedder(cache_dir=tmp_path).embed(["hello"])
    assert vectors.shape == (1, 384)
