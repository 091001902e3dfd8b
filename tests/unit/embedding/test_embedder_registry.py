"""The embedder registry: explicit names, clear errors, nothing loads on construction."""

from __future__ import annotations

import pytest

from headrace.embedding.minilm import MiniLMEmbedder
from headrace.embedding.reference import MiniLMTorchEmbedder
from headrace.embedding.registry import (
    DEFAULT_NAME,
    EMBEDDERS,
    embedder_names,
    make_embedder,
)
from headrace.errors import ConfigError
from headrace.testing.embedders import HashEmbedder


def test_names_are_pinned() -> None:
    assert embedder_names() == [
        "hash",
        "minilm",
        "minilm-int8",
        "minilm-onnx",
        "minilm-torch",
        "none",
    ]


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        EMBEDDERS["mine"] = HashEmbedder  # type: ignore[index]


def test_none_means_keyword_only() -> None:
    assert make_embedder("none") is None


def test_default_is_the_measured_runtime() -> None:
    default = make_embedder("minilm")
    chosen = make_embedder(DEFAULT_NAME)
    assert type(default) is type(chosen)
    assert isinstance(default, MiniLMEmbedder)
    assert isinstance(chosen, MiniLMEmbedder)
    assert default.variant == chosen.variant
    assert default.model_id == "sentence-transformers/all-MiniLM-L6-v2"


@pytest.mark.parametrize(
    ("name", "cls", "variant"),
    [
        ("minilm-onnx", MiniLMEmbedder, "fp32"),
        ("minilm-int8", MiniLMEmbedder, "int8"),
        ("minilm-torch", MiniLMTorchEmbedder, None),
        ("hash", HashEmbedder, None),
    ],
)
def test_each_name_builds_its_embedder(name: str, cls: type, variant: str | None) -> None:
    embedder = make_embedder(name)
    assert isinstance(embedder, cls)
    if variant is not None:
        assert isinstance(embedder, MiniLMEmbedder)
        assert embedder.variant == variant


def test_kwargs_are_passed() -> None:
    embedder = make_embedder("hash", dim=16)
    assert embedder is not None
    assert embedder.dim == 16
    onnx = make_embedder("minilm", threads=1, batch_size=8)
    assert isinstance(onnx, MiniLMEmbedder)
    assert (onnx.threads, onnx.batch_size) == (1, 8)


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match=r"unknown embedder 'bert'.*hash, minilm,.*none"):
        make_embedder("bert")


def test_bad_keyword_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'hash'"):
        make_embedder("hash", dims=16)
    with pytest.raises(ConfigError, match="'none'"):
        make_embedder("none", threads=2)
