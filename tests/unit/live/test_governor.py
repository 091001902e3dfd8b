"""Resource detection from cgroup v1/v2 trees, and the governor's decisions."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from headrace.live.governor import Governor, Resources, detect_resources


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_and_memory_tightest_ancestor_wins(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    _write(tmp_path / "self", "0::/app/worker\n")
    _write(root / "app" / "cpu.max", "150000 100000\n")
    _write(root / "app" / "memory.max", str(300 << 20))
    _write(root / "app" / "worker" / "cpu.max", "max 100000\n")
    _write(root / "app" / "worker" / "memory.max", "max\n")
    res = detect_resources(str(root), str(tmp_path / "self"))
    assert res.cgroup == "v2"
    assert res.cpu_quota == 1.5
    assert res.cpus == min(1.5, res.affinity)
    assert res.memory_bytes == 300 << 20
    assert res.memory_source == "cgroup"


def test_cgroup_v1_quota_and_unlimited_memory(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    _write(tmp_path / "self", "4:memory:/job\n2:cpu,cpuacct:/job\n1:name=systemd:/\n")
    _write(root / "cpu,cpuacct" / "job" / "cpu.cfs_quota_us", "50000\n")
    _write(root / "cpu,cpuacct" / "job" / "cpu.cfs_period_us", "100000\n")
    _write(root / "memory" / "job" / "memory.limit_in_bytes", "9223372036854771712\n")
    res = detect_resources(str(root), str(tmp_path / "self"))
    assert res.cgroup == "v1"
    assert res.cpus == 0.5
    assert res.memory_source == "ram"


def test_no_cgroup_means_affinity_and_ram(tmp_path: Path) -> None:
    res = detect_resources(str(tmp_path / "none"), str(tmp_path / "missing"))
    assert res.cgroup == "none"
    assert res.cpu_quota is None
    assert res.cpus == res.affinity


RES = Resources(cpus=2.0, affinity=2, cpu_quota=None, memory_bytes=1 << 30, memory_source="ram",
                cgroup="none")  # fmt: skip


def test_batches_shrink_over_the_soft_mark_and_grow_back_under_the_low_mark() -> None:
    rss = {"v": 0}
    gov = Governor(RES, max_cpu_share=1.0, memory_limit=1000, max_batch_files=64,
                   rss=lambda: rss["v"])  # fmt: skip
    rss["v"] = 750
    assert [gov.batch_limit() for _ in range(7)] == [32, 16, 8, 4, 2, 1, 1]
    rss["v"] = 600  # between the marks: hold
    assert gov.batch_limit() == 1
    rss["v"] = 100
    assert [gov.batch_limit() for _ in range(7)] == [2, 4, 8, 16, 32, 64, 64]


def test_intake_pauses_over_the_hard_mark_until_rss_falls() -> None:
    rss = {"v": 900}
    gov = Governor(RES, max_cpu_share=1.0, memory_limit=1000, max_batch_files=8,
                   rss=lambda: rss["v"])  # fmt: skip
    stop = threading.Event()
    released = threading.Timer(0.3, lambda: rss.update(v=500))
    released.start()
    gov.wait_for_room(stop)
    assert rss["v"] == 500  # it did not return before RSS fell
    assert gov.state.paused_total == 1
    assert gov.state.paused == ""


def test_a_budget_below_the_working_set_never_hangs() -> None:
    gov = Governor(RES, max_cpu_share=1.0, memory_limit=1000, max_batch_files=8,
                   rss=lambda: 990, stuck_after_s=0.3)  # fmt: skip
    gov.wait_for_room(threading.Event())
    assert gov.state.batch_files == 1


def test_cpu_share_is_kept_by_a_duty_cycle() -> None:
    cpu = {"v": 0.0}
    now = {"v": 0.0}
    gov = Governor(RES, max_cpu_share=0.25, memory_limit=1 << 40, max_batch_files=8,
                   rss=lambda: 1, cpu_time=lambda: cpu["v"], clock=lambda: now["v"])  # fmt: skip
    gov.begin()
    cpu["v"], now["v"] = 1.0, 1.0  # one CPU-second in one second: 50% of 2 CPUs
    waited: list[float] = []

    class Stop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waited.append(timeout or 0.0)
            return False

    gov.wait_for_room(Stop())
    # 1 CPU-s allowed at 0.25 x 2 CPUs = 2 s of wall time: one more second to wait.
    assert waited == [pytest.approx(1.0)]
    assert gov.state.throttled_s == pytest.approx(1.0)
