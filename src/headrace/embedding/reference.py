"""all-MiniLM-L6-v2 on sentence-transformers and torch: the reference for parity tests.

Slower to load (torch import, ~5 s) than :class:`~headrace.embedding.minilm.MiniLMEmbedder`
but it is the model's own published pipeline, so it defines the expected vectors.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from headrace.embedding.base import Vectors
from headrace.embedding.minilm import (
    DEFAULT_BATCH_SIZE,
    DIM,
    MAX_TOKENS,
    MODEL_ID,
    check_token_limit,
    load_minilm_tokenizer,
)
from headrace.embedding.onnx_export import MODEL_EXTRA_HINT, bundled_model_dir
from headrace.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from tokenizers import Tokenizer


class MiniLMTorchEmbedder:
    """all-MiniLM-L6-v2 through ``SentenceTransformer`` on the CPU.

    Same ``model_id`` as the ONNX embedder: their vectors agree to a cosine of 0.99999.
    Texts over ``max_tokens`` raise ``ModelError`` *before* sentence-transformers sees
    them, because it would silently truncate. ``threads``, if given, sets torch's
    process-wide intra-op thread count when the model loads.
    """

    model_id: str = MODEL_ID
    dim: int = DIM
    max_tokens: int = MAX_TOKENS

    def __init__(self, *, threads: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be at least 1, got {threads}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.threads = threads
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._public_tokenizer: Tokenizer | None = None
        self._counter: Tokenizer | None = None  # private: callers may reconfigure the public one
        self._model: Any = None

    def tokenizer(self) -> Tokenizer:
        """The tokenizer ``max_tokens`` is measured with; loads no model."""
        if self._public_tokenizer is None:
            self._public_tokenizer = load_minilm_tokenizer()
        return self._public_tokenizer

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts`` into an ``(n, 384)`` float32 array of unit vectors, in order."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            if self._counter is None:
                self._counter = load_minilm_tokenizer()
            counter = self._counter
        check_token_limit(counter.encode_batch(list(texts)), self.max_tokens)
        model = self._load()
        try:
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        except Exception as exc:  # torch raises many unrelated types
            raise ModelError(f"sentence-transformers failed on {len(texts)} texts: {exc}") from exc
        return np.asarray(vectors, dtype=np.float32)

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = _load_sentence_transformer(self.threads)
            return self._model


def _load_sentence_transformer(threads: int | None) -> Any:
    model_dir = bundled_model_dir()
    # Loading from a local folder needs no network; offline mode stops any hub lookup.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ModelError(
            f"the torch reference needs sentence-transformers: {MODEL_EXTRA_HINT}"
        ) from exc
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        model = SentenceTransformer(str(model_dir), device="cpu")
    except Exception as exc:
        raise ModelError(f"cannot load {model_dir} with sentence-transformers: {exc}") from exc
    model.max_seq_length = MAX_TOKENS
    return model
