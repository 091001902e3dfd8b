"""Live mode end to end: a ``Watcher`` in a thread over a real tree and a real index.

Every scenario ends with the same check: the watcher's index equals a one-shot
``ingest`` of the final tree (the canonical export, vectors included). Waiting is
on conditions with deadlines (``Watcher.sync``, or polling a condition), never on
fixed sleeps.
"""

from __future__ import annotations

import os
import platform
import random
import shutil
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import WORDS
from tests.integration.watch_support import wait_for, watching

from headrace import Index, Settings
from headrace.live import read_state, state_path
from headrace.live.scheduler import Change
from headrace.testing.embedders import HashEmbedder

DEADLINE_S = 60.0


def _text(rng: random.Random, n: int) -> str:
    paras = [" ".join(rng.choices(WORDS, k=rng.randint(5, 25))) for _ in range(rng.randint(1, 3))]
    return f"# note {n}\n\n" + "\n\n".join(paras) + "\n"


def _index(path: Path) -> Index:
    return Index(path, settings=Settings(), embedder=HashEmbedder())


def _export(idx: Index) -> list[dict[str, Any]]:
    return list(idx.export())


def _one_shot(tmp: Path, root: Path) -> list[dict[str, Any]]:
    with _index(tmp / f"oneshot-{time.monotonic_ns()}.sqlite") as idx:
        idx.ingest([str(root)])
        return _export(idx)


def test_bursts_of_creates_modifies_deletes_end_as_a_one_shot_ingest(tmp_path: Path) -> None:
    rng = random.Random(4)
    root = tmp_path / "tree"
    root.mkdir()
    (root / "seed.md").write_text("# seed\n\nalpha beta\n")
    with _index(tmp_path / "live.sqlite") as idx, watching(idx, root) as watcher:
        assert watcher.sync(DEADLINE_S)
        files = [root / f"d{i % 20}" / f"f{i}.md" for i in range(1200)]
        for burst in range(4):  # creates, in bursts, while the watcher works
            for path in files[burst * 300 : (burst + 1) * 300]:
                path.parent.mkdir(exist_ok=True)
                path.write_text(_text(rng, burst))
        for path in rng.sample(files, 400):  # modifies: several writes each
            for n in range(3):
                path.write_text(_text(rng, n))
        for path in rng.sample(files, 250):  # deletes (some of them just modified)
            path.unlink(missing_ok=True)
        kept = [p for p in files if p.exists()]
        for n, path in enumerate(kept[:40]):  # renames
            path.rename(path.with_name(f"moved{n}.md"))
        shutil.rmtree(root / "d7")  # a whole directory at once
        assert watcher.sync(DEADLINE_S)
        live = _export(idx)
        assert watcher.metrics.batches._value.get() > 1  # it really worked incrementally
    assert live == _one_shot(tmp_path, root)
    assert len({row["source"] for row in live}) == sum(1 for _ in root.rglob("*.md"))


def test_changes_made_while_stopped_are_picked_up_on_start(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    for i in range(30):
        (root / f"f{i}.md").write_text(f"# f{i}\n\nalpha {i} beta\n")
    with _index(tmp_path / "live.sqlite") as idx:
        with watching(idx, root) as watcher:
            assert watcher.sync(DEADLINE_S)
        state = read_state(state_path(idx.path))
        assert state is not None
        assert state["phase"] == "stopped"
        assert not state["running"]
        (root / "f1.md").write_text("# f1\n\nchanged while stopped\n")
        (root / "f2.md").unlink()
        (root / "new.md").write_text("# new\n\nadded while stopped\n")
        (root / "f3.md").rename(root / "f3-renamed.md")
    with _index(tmp_path / "live.sqlite") as idx:
        # Notifications off: only the catch-up rescan at start can find these.
        with watching(idx, root, notifications=False) as watcher:
            assert watcher.sync(DEADLINE_S)
            assert watcher.totals["deleted"] == 1
            assert watcher.totals["renamed"] == 1
        live = _export(idx)
    assert live == _one_shot(tmp_path, root)


def test_an_unexpected_error_in_a_rescan_does_not_end_the_watcher(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    for i in range(5):
        (root / f"f{i}.md").write_text(f"# f{i}\n\ngamma {i} delta\n")
    with _index(tmp_path / "live.sqlite") as idx:
        real_plan = idx.plan
        failures = [RuntimeError("injected: plan failed"), RuntimeError("injected again")]

        def flaky_plan(roots: Any) -> Any:
            if failures:
                raise failures.pop(0)
            return real_plan(roots)

        idx.plan = flaky_plan  # type: ignore[method-assign]
        with watching(idx, root, notifications=False) as watcher:
            assert watcher.sync(DEADLINE_S)  # the catch-up failed twice, then ran
            (root / "late.md").write_text("# late\n\nepsilon\n")
            assert watcher.sync(DEADLINE_S)
            errors = watcher.metrics.errors.labels("watch", "RuntimeError")._value.get()
        assert (failures, errors) == ([], 2)
        live = _export(idx)
    assert live == _one_shot(tmp_path, root)


def test_without_notifications_rescans_converge_even_past_the_queue_bound(
    tmp_path: Path,
) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    (root / "seed.md").write_text("# seed\n\nalpha\n")
    rescan = 0.2
    with (
        _index(tmp_path / "live.sqlite") as idx,
        watching(idx, root, notifications=False, rescan_interval_s=rescan, max_pending=25) as w,
    ):
        assert w.sync(DEADLINE_S)
        for i in range(200):
            (root / f"f{i}.md").write_text(f"# f{i}\n\ngamma {i} delta\n")
        (root / "seed.md").unlink()
        expected = _one_shot(tmp_path, root)
        # No sync(): the periodic rescans alone must converge, 25 files at a time. The
        # end state is the test, not a count: a rescan may catch a file between its
        # creation and its write (indexed empty), and a later rescan must repair it.
        wait_for(lambda: _export(idx) == expected, "the index of the final tree")
        assert idx.ledger.get(str(root / "seed.md")) is None
        assert w.scheduler.deferred_total > 0  # the bound held: overflow was deferred
        assert w.metrics.deferred._value.get() == w.scheduler.deferred_total


def test_low_memory_budget_shrinks_batches_and_pauses_intake(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    for i in range(60):
        (root / f"f{i}.md").write_text(f"# f{i}\n\nepsilon {i} zeta\n")
    budget = 400 << 20
    # A simulated RSS: over the hard mark (85%) for the first few looks, then over
    # the soft mark (70%) only, so the test sees both the pause and the shrinking.
    looks = {"n": 0}

    def rss() -> int:
        looks["n"] += 1
        return int(budget * (0.9 if looks["n"] <= 6 else 0.75))

    sizes: list[int] = []
    with _index(tmp_path / "live.sqlite") as idx:
        with watching(idx, root, memory_limit_mb=budget >> 20, batch_files=64, rss=rss) as w:
            w.on_batch = lambda batch, _at: sizes.append(len(batch))
            assert w.sync(DEADLINE_S)
            governor = w.governor.state
        live = _export(idx)
    assert governor.paused_total == 1  # intake paused once, above the hard mark
    # After the pause RSS stays over the soft mark: one file per batch, never more.
    assert sizes == [1] * 60
    assert live == _one_shot(tmp_path, root)


def test_metrics_endpoint_is_scraped_and_parsed(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    for i in range(12):
        (root / f"f{i}.md").write_text(f"# f{i}\n\neta {i} theta\n")
    (root / "broken.json").write_text('{"a": [1, 2,\n')
    with _index(tmp_path / "live.sqlite") as idx, watching(idx, root, metrics_port=0) as w:
        assert w.sync(DEADLINE_S)
        (root / "f0.md").unlink()
        assert w.sync(DEADLINE_S)
        assert w.metrics_port
        url = f"http://127.0.0.1:{w.metrics_port}/metrics"
        for _ in range(5):  # a late notification of the unlink may still be pending
            with urllib.request.urlopen(url, timeout=10) as response:
                body = response.read().decode()
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(body)
                for s in family.samples
            }
            if samples[("headrace_queue_depth", ())] == 0:
                break
            assert w.sync(DEADLINE_S)
    assert samples[("headrace_files_processed_total", (("outcome", "indexed"),))] == 12
    assert samples[("headrace_files_processed_total", (("outcome", "failed"),))] == 1
    assert samples[("headrace_files_processed_total", (("outcome", "deleted"),))] == 1
    errors = [v for (n, labels), v in samples.items() if n == "headrace_errors_total"]
    assert errors == [1.0]
    assert (
        "headrace_errors_total",
        (("error_class", "ParseError"), ("stage", "parse")),
    ) in samples
    assert samples[("headrace_queue_depth", ())] == 0
    # One observation per change processed: 13 files and a deletion at least; under
    # load a file can be seen once by the catch-up rescan and again by its event.
    assert samples[("headrace_latency_seconds_count", ())] >= 14
    assert samples[("headrace_chunks_processed_total", ())] == 12
    assert samples[("headrace_embeddings_total", (("kind", "computed"),))] == 12
    assert samples[("headrace_usable_cpus", ())] >= 0.01
    assert samples[("process_resident_memory_bytes", ())] > 0
    assert ("headrace_stage_seconds_count", (("stage", "embed"),)) in samples


def test_status_reads_a_running_watchers_state(tmp_path: Path) -> None:
    from headrace.cli.watch import watcher_status

    root = tmp_path / "tree"
    root.mkdir()
    (root / "a.md").write_text("# a\n\niota kappa\n")
    with (
        _index(tmp_path / "live.sqlite") as idx,
        watching(idx, root, state_interval_s=0.05) as w,
    ):
        assert w.sync(DEADLINE_S)
        wait_for(lambda: (read_state(state_path(idx.path)) or {}).get("totals"), "a state file")
        state, text = watcher_status(idx.path)
        assert state is not None
        assert state["running"]
        assert state["pid"] == os.getpid()
        assert state["totals"]["files_done"] == 1
        assert "watcher    running" in text
        assert "1 indexed" in text
    state, text = watcher_status(idx.path)
    assert state is not None
    assert not state["running"]
    assert "not running" in text


def test_latency_is_recorded_per_change(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    seen: list[tuple[Change, float]] = []
    with _index(tmp_path / "live.sqlite") as idx, watching(idx, root, debounce_s=0.0) as w:
        w.on_batch = lambda batch, at: seen.extend((c, at) for c in batch)
        written = time.time()
        (root / "a.md").write_text("# a\n\nlambda mu\n")
        wait_for(lambda: idx.ledger.get(str(root / "a.md")) is not None, "a.md indexed")
        wait_for(lambda: bool(seen), "the batch callback")
    change, at = next((c, at) for c, at in seen if c.path == str(root / "a.md"))
    assert written - 1.0 <= change.since <= at
    assert list(w.latencies)
    assert all(v >= 0 for v in w.latencies)


@pytest.mark.parametrize("tuning", [True, False])
def test_heap_is_bounded_only_once_caught_up_and_loosened_at_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tuning: bool
) -> None:
    from headrace.live import service

    calls: list[str] = []
    monkeypatch.setattr(service, "bound_heap", lambda **kw: calls.append("bound") or True)
    monkeypatch.setattr(service, "loosen_heap", lambda: calls.append("loosen") or True)
    monkeypatch.setattr(service, "trim_heap", lambda: calls.append("trim") or True)
    root = tmp_path / "tree"
    root.mkdir()
    for i in range(20):
        (root / f"f{i}.md").write_text(f"# f{i}\n\nalpha {i} beta\n")
    with _index(tmp_path / "live.sqlite") as idx:
        ingest_paths = idx.ingest_paths

        def batch(*args: Any, **kwargs: Any) -> None:
            calls.append("batch")
            ingest_paths(*args, **kwargs)

        monkeypatch.setattr(idx, "ingest_paths", batch)
        with watching(idx, root, heap_tuning=tuning) as watcher:
            assert watcher.sync(DEADLINE_S)
            assert idx.ledger.get(str(root / "f19.md")) is not None
            wait_for(lambda: not tuning or "bound" in calls, "the heap bound")
            (root / "late.md").write_text("# late\n\ngamma\n")
            assert watcher.sync(DEADLINE_S)
            wait_for(lambda: not tuning or calls.count("trim") >= 1, "a trim when idle")
    if tuning:
        assert calls.count("bound") == 1
        # the catch-up ran with glibc's defaults (ingest speed): bounded after it
        assert calls.index("batch") < calls.index("bound") < len(calls) - calls[::-1].index("batch")
        assert calls[-1] == "loosen"
    else:
        assert set(calls) == {"batch"}


def test_headrace_watch_stops_cleanly_on_sigterm_and_a_restart_resumes(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    root = tmp_path / "tree"
    root.mkdir()
    for i in range(20):
        (root / f"f{i}.md").write_text(f"# f{i}\n\nnu {i} xi\n")
    index = tmp_path / "svc.sqlite"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
    env |= {"HEADRACE_EMBEDDER": "hash", "HF_HUB_OFFLINE": "1", "XDG_DATA_HOME": str(tmp_path)}
    env["HEADRACE_WATCH_STATE_INTERVAL_S"] = "0.1"
    cmd = [sys.executable, "-m", "headrace", "watch", str(root), "--index", str(index),
           "--log-format", "json", "--debounce", "0.05", "-q"]  # fmt: skip

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)

    def done(key: str = "files_done") -> int:
        state = read_state(state_path(index)) or {}
        return int(state.get("totals", {}).get(key, 0)) if state.get("running") else 0

    proc = start()
    try:
        wait_for(lambda: done() == 20, "the first watcher's catch-up")
        if "PYTHONMALLOC" not in env and platform.libc_ver()[0] == "glibc":
            # restarted itself in place (same pid) with Python objects on glibc malloc
            environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
            assert b"PYTHONMALLOC=malloc" in environ
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    (root / "f0.md").unlink()
    (root / "late.md").write_text("# late\n\nomicron\n")
    proc = start()
    try:
        wait_for(lambda: done() == 1 and done("deleted") == 1, "the restart's catch-up")
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    with _index(index) as idx:
        live = _export(idx)
    assert live == _one_shot(tmp_path, root)
