"""The built-in embedders, by name.

- ``minilm``: the default, an alias of ``DEFAULT_NAME`` (``minilm-onnx``);
- ``minilm-onnx``: all-MiniLM-L6-v2 on ONNX Runtime, plain fp32 graph;
- ``minilm-int8``: dynamic int8 quantisation, opt-in, ``model_id`` ``...#int8``;
- ``minilm-torch``: sentence-transformers on torch, the reference for parity tests;
- ``hash``: :class:`~headrace.testing.embedders.HashEmbedder`, the test double;
- ``none``: no embedder at all, a keyword-only index (:func:`make_embedder` gives None).

Constructing any of them is cheap; models load on the first ``embed``.

Why ``minilm-onnx`` is the default (``bench/embed_runtime.py``, 1,000 chunks of 129
tokens on average, 2 shared CPUs): it loads in ~0.6 s instead of ~6 s for torch, runs
1.15-1.7x the reference's throughput at a cosine of 0.9999998, and the fused graph was
not faster (0.96x per batch, paired in one process), so it has no name here; it stays
reachable as ``MiniLMEmbedder(variant="fp32-opt")`` and is the source of the int8
graph. int8 is ~1.5x faster than fp32 but drifts (min cosine 0.965), so it is a
separate model and opt-in.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from headrace.embedding.base import Embedder
from headrace.errors import ConfigError

EmbedderFactory = Callable[..., Embedder]

NO_EMBEDDER: Final = "none"

# Chosen by measurement: see the module docstring.
DEFAULT_NAME: Final = "minilm-onnx"


class _Lazy:
    """A built-in's factory that imports its module on first use: the embedder
    modules pull in numpy and tokenizers (~23 MB of RSS), which a keyword-only
    run (``none``) never needs. ``inspect.signature`` sees the real constructor."""

    def __init__(self, module: str, name: str, **fixed: Any) -> None:
        self._module, self._name, self._fixed = module, name, fixed

    def _target(self) -> EmbedderFactory:
        factory: EmbedderFactory = getattr(importlib.import_module(self._module), self._name)
        return functools.partial(factory, **self._fixed) if self._fixed else factory

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self._target())

    def __call__(self, *args: Any, **kwargs: Any) -> Embedder:
        return self._target()(*args, **kwargs)


_MINILM = "headrace.embedding.minilm"
_BUILT_INS: dict[str, EmbedderFactory] = {
    "minilm-onnx": _Lazy(_MINILM, "MiniLMEmbedder", variant="fp32"),
    "minilm-int8": _Lazy(_MINILM, "MiniLMEmbedder", variant="int8"),
    "minilm-torch": _Lazy("headrace.embedding.reference", "MiniLMTorchEmbedder"),
    "hash": _Lazy("headrace.testing.embedders", "HashEmbedder"),
}
_BUILT_INS["minilm"] = _BUILT_INS[DEFAULT_NAME]

EMBEDDERS: Final[Mapping[str, EmbedderFactory]] = MappingProxyType(_BUILT_INS)
"""Built-in embedder factories by name (read-only); ``"none"`` is handled by
:func:`make_embedder`."""


def embedder_names() -> list[str]:
    """Every name :func:`make_embedder` accepts, ``"none"`` included, sorted."""
    return sorted([*EMBEDDERS, NO_EMBEDDER])


def make_embedder(name: str, **kwargs: Any) -> Embedder | None:
    """Build the embedder registered as ``name`` with ``kwargs``; ``"none"`` gives None.

    Raises ``ConfigError`` for an unknown name (listing the valid ones) or for
    arguments the embedder does not take.
    """
    if name == NO_EMBEDDER:
        if kwargs:
            raise ConfigError(f"embedder 'none' takes no arguments, got {sorted(kwargs)}")
        return None
    factory = EMBEDDERS.get(name)
    if factory is None:
        raise ConfigError(f"unknown embedder {name!r}; valid names: {', '.join(embedder_names())}")
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as exc:  # a misspelt or unsupported keyword argument
        raise ConfigError(f"bad arguments for embedder {name!r}: {exc}") from exc
    return factory(**kwargs)
