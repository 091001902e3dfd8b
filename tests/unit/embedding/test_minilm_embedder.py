"""MiniLMEmbedder behaviour that needs no model: limits, laziness, pooling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from headrace.embedding import minilm
from headrace.embedding.base import Embedder
from headrace.embedding.minilm import MiniLMEmbedder, load_minilm_tokenizer, mean_pool_normalize
from headrace.embedding.reference import MiniLMTorchEmbedder
from headrace.errors import ConfigError, ModelError


@pytest.fixture
def no_export(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything tries to build or load a model."""

    def forbidden(*args: object, **kwargs: object) -> Path:
        raise AssertionError("the model must not load")

    monkeypatch.setattr(minilm, "ensure_onnx_model", forbidden)


def test_identity() -> None:
    embedder: Embedder = MiniLMEmbedder()
    assert embedder.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert (embedder.dim, embedder.max_tokens) == (384, 256)
    assert MiniLMEmbedder(variant="fp32-opt").model_id == embedder.model_id
    assert MiniLMEmbedder(variant="int8").model_id == "sentence-transformers/all-MiniLM-L6-v2#int8"
    assert MiniLMTorchEmbedder().model_id == embedder.model_id


def test_tokenizer_never_truncates_or_pads(no_export: None) -> None:
    tokenizer = MiniLMEmbedder().tokenizer()
    assert tokenizer.truncation is None
    assert tokenizer.padding is None
    # The bundled tokenizer.json would cut this at 128.
    assert len(tokenizer.encode("word " * 200).ids) == 202


def test_reconfiguring_the_public_tokenizer_does_not_affect_embed(no_export: None) -> None:
    embedder = MiniLMEmbedder()
    embedder.tokenizer().enable_truncation(max_length=16)
    with pytest.raises(ModelError):
        embedder.embed(["hello " * 300])


def test_over_limit_raises_before_loading(no_export: None) -> None:
    with pytest.raises(ModelError, match=r"1 text\(s\) exceed .* 256 tokens \(text #1 has 257\)"):
        MiniLMEmbedder().embed(["short", "hello " * 255])


def test_torch_reference_checks_the_limit_too(monkeypatch: pytest.MonkeyPatch) -> None:
    embedder = MiniLMTorchEmbedder()
    monkeypatch.setattr(embedder, "_load", lambda: pytest.fail("must not load"))
    with pytest.raises(ModelError, match="256"):
        embedder.embed(["hello " * 255])


def test_empty_input_needs_no_model(no_export: None) -> None:
    assert MiniLMEmbedder().embed([]).shape == (0, 384)


@pytest.mark.parametrize("kwargs", [{"variant": "fp16"}, {"threads": 0}, {"batch_size": 0}])
def test_bad_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        MiniLMEmbedder(**kwargs)  # type: ignore[arg-type]


def test_threads_default_to_usable_cpus() -> None:
    assert MiniLMEmbedder().threads == minilm.usable_cpus() >= 1
    assert MiniLMEmbedder(threads=3).threads == 3


def test_mean_pool_ignores_padding_and_normalises() -> None:
    hidden = np.array(
        [[[1.0, 0.0], [3.0, 0.0], [100.0, 100.0]], [[0.0, 2.0], [0.0, 0.0], [0.0, 0.0]]],
        dtype=np.float32,
    )
    mask = np.array([[1, 1, 0], [1, 0, 0]], dtype=np.int64)
    pooled = mean_pool_normalize(hidden, mask)
    assert pooled.dtype == np.float32
    np.testing.assert_allclose(pooled, [[1.0, 0.0], [0.0, 1.0]], atol=1e-7)


def test_load_minilm_tokenizer_returns_fresh_instances() -> None:
    assert load_minilm_tokenizer() is not load_minilm_tokenizer()
