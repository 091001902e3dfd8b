"""Embedders: local models that turn chunk texts into unit vectors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from tokenizers import Tokenizer

    Vectors = npt.NDArray[np.float32]


def __getattr__(name: str) -> object:
    # numpy (~16 MB of RSS) loads only where vectors are made: a keyword-only run
    # imports this module (the ``Embedder`` protocol) but never needs ``Vectors``.
    if name == "Vectors":
        import numpy as np
        import numpy.typing as npt

        return npt.NDArray[np.float32]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors.

    Contract:
    - ``model_id`` names the model *and* anything that changes its vectors (an int8
      export is a different id); vectors of two ids are never mixed in one index;
    - ``max_tokens`` is the real input limit including special tokens; ``tokenizer()``
      returns the tokenizer that limit is measured with (cheap: no model load);
    - ``embed`` returns an array of shape ``(len(texts), dim)``; it never truncates:
      a text over the limit raises ``ModelError``;
    - loading the model is lazy: constructing an embedder does no heavy work.
    """

    model_id: str
    dim: int
    max_tokens: int

    def tokenizer(self) -> Tokenizer: ...

    def embed(self, texts: Sequence[str]) -> Vectors: ...
