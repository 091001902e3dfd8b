"""Embedder test doubles: deterministic, fast, countable and able to fail on cue.

``HashEmbedder`` uses the real MiniLM tokenizer, so chunk sizes in tests match
production, but its vectors are a hashed bag of token ids: no model, no torch, and texts
sharing words are similar. ``FailingEmbedder`` raises on chosen calls to test retries,
dead letters and "a failed run changes nothing".
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from headrace.embedding.base import Vectors
from headrace.embedding.minilm import MAX_TOKENS, check_token_limit, load_minilm_tokenizer
from headrace.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

_SPECIAL_IDS: Final = (0, 100, 101, 102, 103)  # [PAD] [UNK] [CLS] [SEP] [MASK]
_MIX: Final = np.uint64(0x9E3779B97F4A7C15)  # golden-ratio multiplier: spreads ids over 64 bits
_SLOTS_PER_TOKEN: Final = 2


class HashEmbedder:
    """Deterministic embedder: each token id adds ±1 at two hashed positions, then L2.

    - ``model_id`` is ``"headrace-testing/hash-{dim}"`` (never mixes with a real model);
    - ``max_tokens`` and ``tokenizer()`` are MiniLM's, and over-limit texts raise
      ``ModelError`` exactly like the real embedder;
    - ``calls`` counts every ``embed`` call (failed ones too), ``texts_embedded`` the
      texts of successful calls; both are safe to read from tests across threads.
    """

    max_tokens: int = MAX_TOKENS

    def __init__(self, dim: int = 384) -> None:
        if dim < _SLOTS_PER_TOKEN:
            raise ConfigError(f"dim must be at least {_SLOTS_PER_TOKEN}, got {dim}")
        self.dim = dim
        self.model_id = f"headrace-testing/hash-{dim}"
        self.calls = 0
        self.texts_embedded = 0
        self._lock = threading.Lock()
        self._tokenizer: Tokenizer | None = None
        self._counter: Tokenizer | None = None

    def tokenizer(self) -> Tokenizer:
        """MiniLM's tokenizer (no truncation, no padding)."""
        if self._tokenizer is None:
            self._tokenizer = load_minilm_tokenizer()
        return self._tokenizer

    def reset_counts(self) -> None:
        """Zero ``calls`` and ``texts_embedded``."""
        with self._lock:
            self.calls = 0
            self.texts_embedded = 0

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Hash ``texts`` into an ``(n, dim)`` float32 array of unit vectors."""
        with self._lock:
            self.calls += 1
            call = self.calls
        self._before_embed(call)
        with self._lock:
            if self._counter is None:
                self._counter = load_minilm_tokenizer()
            counter = self._counter
        encodings = counter.encode_batch(list(texts))
        check_token_limit(encodings, self.max_tokens)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, encoding in enumerate(encodings):
            out[row] = self._vector(np.asarray(encoding.ids, dtype=np.uint64))
        with self._lock:
            self.texts_embedded += len(texts)
        return out

    def _before_embed(self, call: int) -> None:
        """Hook for fault injection; ``call`` is 1-based."""

    def _vector(self, ids: npt.NDArray[np.uint64]) -> Vectors:
        ids = ids[~np.isin(ids, _SPECIAL_IDS)]
        vector = np.zeros(self.dim, dtype=np.float32)
        if ids.size == 0:
            vector[0] = 1.0  # empty text: still a unit vector
            return vector
        hashed = ids * _MIX  # uint64 arrays wrap silently, which is the point
        for slot in range(_SLOTS_PER_TOKEN):
            index = ((hashed >> np.uint64(8 + 20 * slot)) % np.uint64(self.dim)).astype(np.intp)
            sign = np.where((hashed >> np.uint64(60 + slot)) & np.uint64(1), 1.0, -1.0)
            np.add.at(vector, index, sign.astype(np.float32))
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:  # the ±1s cancelled out
            vector[0] = 1.0
            return vector
        return vector / norm


class FailingEmbedder(HashEmbedder):
    """A ``HashEmbedder`` that raises on calls ``fail_on_call`` … ``fail_on_call + times - 1``.

    ``error`` builds the exception (default: ``ModelError``); pass e.g.
    ``lambda: TransientError("busy")`` with ``times=1`` to test a retry that succeeds.
    ``times=None`` fails on every call from ``fail_on_call`` on. Failed calls embed
    nothing and do not add to ``texts_embedded``.
    """

    def __init__(
        self,
        fail_on_call: int,
        *,
        times: int | None = 1,
        error: Callable[[], Exception] | None = None,
        dim: int = 384,
    ) -> None:
        if fail_on_call < 1 or (times is not None and times < 1):
            raise ConfigError("fail_on_call and times must be at least 1")
        super().__init__(dim)
        self.fail_on_call = fail_on_call
        self.times = times
        self._error = error or (lambda: ModelError("injected embedder failure"))

    def _before_embed(self, call: int) -> None:
        if call < self.fail_on_call:
            return
        if self.times is None or call < self.fail_on_call + self.times:
            raise self._error()
