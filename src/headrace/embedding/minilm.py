"""all-MiniLM-L6-v2 on ONNX Runtime: the production embedder.

Vectors match sentence-transformers (mean pooling over the attention mask, then L2
normalisation) to a cosine of 0.99999; ``tests/integration/test_embedding_parity.py``
pins that. The ONNX graph is exported from the bundled weights on first use
(:mod:`headrace.embedding.onnx_export`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from headrace.embedding.base import Vectors
from headrace.embedding.onnx_export import (
    VARIANTS,
    Variant,
    bundled_model_dir,
    ensure_onnx_model,
)
from headrace.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from tokenizers import Encoding, Tokenizer

MODEL_ID: Final = "sentence-transformers/all-MiniLM-L6-v2"
INT8_MODEL_ID: Final = f"{MODEL_ID}#int8"
DIM: Final = 384
MAX_TOKENS: Final = 256  # position limit the model was trained with, [CLS] and [SEP] included
DEFAULT_BATCH_SIZE: Final = 32


def load_minilm_tokenizer() -> Tokenizer:
    """A fresh MiniLM tokenizer with truncation and padding disabled.

    The bundled ``tokenizer.json`` truncates and pads to 128 tokens; left as is it would
    silently cut texts and change vectors, so both are switched off here.
    """
    from tokenizers import Tokenizer

    path = bundled_model_dir() / "tokenizer.json"
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust loader raises a bare Exception
        raise ModelError(f"cannot load the tokenizer {path}: {exc}") from exc
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def usable_cpus() -> int:
    """CPUs this process may run on (respects affinity masks and cgroup cpusets)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check_token_limit(encodings: Sequence[Encoding], max_tokens: int) -> list[int]:
    """Return each encoding's length; raise ``ModelError`` if any exceeds ``max_tokens``."""
    lengths = [len(encoding.ids) for encoding in encodings]
    over = [(i, n) for i, n in enumerate(lengths) if n > max_tokens]
    if over:
        first, length = over[0]
        raise ModelError(
            f"{len(over)} text(s) exceed the model limit of {max_tokens} tokens "
            f"(text #{first} has {length}); chunk texts before embedding, never truncate"
        )
    return lengths


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 on ONNX Runtime (CPU).

    ``variant`` picks the ONNX graph: ``fp32`` (plain export), ``fp32-opt`` (fused
    attention; same vectors and id) or ``int8`` (quantised; its own ``model_id``).
    ``threads`` sets ORT's intra-op threads (default: the usable CPUs). Constructing
    does no heavy work; the graph is exported/loaded on the first :meth:`embed`.
    Thread-safe: ONNX Runtime sessions may run concurrently.
    """

    dim: int = DIM
    max_tokens: int = MAX_TOKENS

    def __init__(
        self,
        *,
        variant: Variant = "fp32",
        threads: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        cache_dir: Path | None = None,
    ) -> None:
        if variant not in VARIANTS:
            raise ConfigError(f"unknown MiniLM variant {variant!r}; expected one of {VARIANTS}")
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be at least 1, got {threads}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.variant: Variant = variant
        self.model_id: str = INT8_MODEL_ID if variant == "int8" else MODEL_ID
        self.threads = threads or usable_cpus()
        self.batch_size = batch_size
        self._cache_dir = cache_dir
        self._lock = threading.Lock()
        self._public_tokenizer: Tokenizer | None = None
        # A private instance: callers may reconfigure the public one (e.g. turn on
        # truncation), which must never change what embed() checks and feeds.
        self._encoder: Tokenizer | None = None
        self._session: Any = None
        self._input_names: frozenset[str] = frozenset()

    def tokenizer(self) -> Tokenizer:
        """The tokenizer ``max_tokens`` is measured with; loads no model."""
        if self._public_tokenizer is None:
            self._public_tokenizer = load_minilm_tokenizer()
        return self._public_tokenizer

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts`` into an ``(n, 384)`` float32 array of unit vectors.

        Texts are sorted by length and run in batches of ``batch_size`` to limit
        padding; the result is in input order. Raises ``ModelError`` if a text is longer
        than ``max_tokens`` (nothing is embedded then) or the runtime fails.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = self._tokenize(texts)
        lengths = check_token_limit(encodings, self.max_tokens)  # before any model load
        session = self._load()
        order = np.argsort(np.asarray(lengths), kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            out[rows] = self._run(session, [encodings[i].ids for i in rows])
        return out

    def _tokenize(self, texts: Sequence[str]) -> list[Encoding]:
        with self._lock:
            if self._encoder is None:
                self._encoder = load_minilm_tokenizer()
            encoder = self._encoder
        return list(encoder.encode_batch(list(texts)))

    def _load(self) -> Any:
        with self._lock:
            if self._session is None:
                path = ensure_onnx_model(self._cache_dir, variant=self.variant)
                self._session = _open_session(path, self.threads)
                self._input_names = frozenset(i.name for i in self._session.get_inputs())
            return self._session

    def _run(self, session: Any, ids: list[list[int]]) -> Vectors:
        input_ids, mask = _pad(ids)
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        try:
            hidden = session.run(["last_hidden_state"], feeds)[0]
        except Exception as exc:  # ORT raises its own untyped errors
            raise ModelError(f"ONNX Runtime failed on a batch of {len(ids)}: {exc}") from exc
        return mean_pool_normalize(hidden, mask)


def _pad(ids: list[list[int]]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    width = max(len(row) for row in ids)
    input_ids = np.zeros((len(ids), width), dtype=np.int64)  # [PAD] is id 0
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return input_ids, mask


def mean_pool_normalize(hidden: npt.NDArray[np.float32], mask: npt.NDArray[np.int64]) -> Vectors:
    """Mean of the token vectors under ``mask``, then L2 normalisation (float32)."""
    weights = mask.astype(np.float32)
    summed: Vectors = np.einsum("btd,bt->bd", hidden.astype(np.float32, copy=False), weights)
    counts = np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)
    pooled: Vectors = summed / counts
    norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    result: Vectors = (pooled / norms).astype(np.float32, copy=False)
    return result


def _open_session(path: Path, threads: int) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ModelError(f"onnxruntime is not installed: {exc}") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: ORT's warnings go to stderr, not logging
    # ORT keeps one memory plan per distinct input shape; our batches vary in both
    # dimensions, so that cache grows for as long as the process lives (measured:
    # 372 -> 469 MB over 450 calls with it, 355 -> 359 MB without).
    options.enable_mem_pattern = False
    if os.environ.get("HEADRACE_ORT_SPIN", "1") == "0":
        # Idle intra-op threads busy-wait by default; inside a pipeline whose other
        # stages need the same cores, not spinning can be faster (bench/ingest_cold.py).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelError(f"cannot load {path}: {exc}; delete it to re-export") from exc
