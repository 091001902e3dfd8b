"""The service examples in docs/deploy/ run as written.

The systemd unit's ``ExecStart`` and the Containerfile's ``ENTRYPOINT`` are read
from the files (not copied here), pointed at a temporary home / volume and started
as real processes: each must catch up, serve Prometheus metrics on the port it
names, and exit 0 on the stop signal the example configures. ``systemd-analyze
verify`` checks the unit where systemd's tools are installed, and compose.yaml must
build that Containerfile and publish the port it exposes. So an edit to a flag or
to the CLI that breaks an example fails here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from headrace.live import read_state, state_path

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy"
UNIT = DEPLOY / "headrace-watch.service"
CONTAINERFILE = DEPLOY / "Containerfile"
COMPOSE = DEPLOY / "compose.yaml"
DEADLINE_S = 60.0


def _logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined and comments dropped."""
    out: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append(pending + line)
        pending = ""
    return out


def _unit() -> tuple[list[str], dict[str, str], dict[str, str]]:
    """(ExecStart argv, Environment, other [Service] keys) of the unit file."""
    argv: list[str] = []
    env: dict[str, str] = {}
    keys: dict[str, str] = {}
    for line in _logical_lines(UNIT.read_text()):
        key, _, value = line.partition("=")
        if key == "ExecStart":
            argv = shlex.split(value)
        elif key == "Environment":
            name, _, val = value.partition("=")
            env[name] = val
        elif value:
            keys[key] = value
    return argv, env, keys


def _containerfile() -> tuple[list[str], dict[str, str], list[str], str]:
    """(ENTRYPOINT argv, ENV, EXPOSE ports, STOPSIGNAL) of the Containerfile."""
    entry: list[str] = []
    env: dict[str, str] = {}
    expose: list[str] = []
    stop = "SIGTERM"
    for line in _logical_lines(CONTAINERFILE.read_text()):
        word, _, rest = line.partition(" ")
        if word == "ENTRYPOINT":
            entry = json.loads(rest)
        elif word == "ENV":
            env |= dict(item.split("=", 1) for item in shlex.split(rest))
        elif word == "EXPOSE":
            expose += rest.split()
        elif word == "STOPSIGNAL":
            stop = rest.strip()
    return entry, env, expose, stop


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def _run_service(argv: list[str], env: dict[str, str], index: Path, stop: signal.Signals) -> None:
    """Start ``headrace`` with ``argv`` (after the program name), check it, stop it."""
    port = _free_port()
    argv = list(argv)
    argv[argv.index("--metrics-port") + 1] = str(port)
    root = Path(argv[1])
    for i in range(5):
        (root / f"note{i}.md").write_text(f"# note {i}\n\nkeys rotate every {i} days\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
    env = base | env | {"HEADRACE_EMBEDDER": "hash", "HEADRACE_WATCH_STATE_INTERVAL_S": "0.1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "headrace", *argv], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            state = read_state(state_path(index)) or {}
            if state.get("running") and state.get("totals", {}).get("files_done") == 5:
                break
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the service did not catch up"
            time.sleep(0.05)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            families = {f.name: f for f in text_string_to_metric_families(r.read().decode())}
        assert families["headrace_usable_cpus"].samples[0].value >= 1
        assert families["headrace_memory_limit_bytes"].samples[0].value > 0
    finally:
        proc.send_signal(stop)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert (read_state(state_path(index)) or {}).get("running") is False
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert lines, f"--log-format json printed no JSON lines: {err!r}"


def test_the_systemd_unit_runs_as_written(tmp_path: Path) -> None:
    argv, env, keys = _unit()
    assert Path(argv[0]).name == "headrace"
    home = tmp_path / "home"
    args = [a.replace("%h", str(home)) for a in argv[1:]]
    Path(args[1]).mkdir(parents=True)
    assert keys["KillSignal"] == "SIGTERM"
    env |= {"HOME": str(home), "XDG_DATA_HOME": ""}  # as systemd --user starts it
    index_name = _option(args, "--index")
    index = home / ".local" / "share" / "headrace" / f"{index_name}.sqlite"
    _run_service(args, env, index, signal.SIGTERM)
    assert index.exists(), f"the named index {index_name!r} is not where the README says"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    exe = shutil.which("headrace") or str(Path(sys.executable).with_name("headrace"))
    text = UNIT.read_text().replace("%h/.local/headrace/bin/headrace", exe)
    unit = tmp_path / UNIT.name
    unit.write_text(text)
    verify = ["systemd-analyze", "verify", str(unit)]
    done = subprocess.run(verify, check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert UNIT.name not in done.stderr, done.stderr  # no warnings about the unit itself


def test_the_container_entrypoint_runs_as_written(tmp_path: Path) -> None:
    entry, env, expose, stop = _containerfile()
    assert entry[0] == "headrace"
    volumes = {"/data": str(tmp_path / "data"), "/var/lib/headrace": str(tmp_path / "state")}
    args = [re.sub(r"^(/data|/var/lib/headrace)", lambda m: volumes[m[1]], a) for a in entry[1:]]
    for path in volumes.values():
        Path(path).mkdir()
    state = volumes["/var/lib/headrace"]
    env = {k: re.sub(r"^/var/lib/headrace", state, v) for k, v in env.items()}
    assert _option(args, "--metrics-port") in expose
    _run_service(args, env, Path(_option(args, "--index")), signal.Signals[stop])


def test_compose_builds_that_containerfile_and_publishes_its_port() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    service = compose["services"]["headrace"]
    build = service["build"]
    context = (COMPOSE.parent / build["context"]).resolve()
    assert (context / build["dockerfile"]).resolve() == CONTAINERFILE
    assert (context / "pyproject.toml").exists()
    entry, _, expose, _ = _containerfile()
    published = {p.split(":")[-1] for p in service["ports"]}
    assert _option(entry, "--metrics-port") in published <= set(expose)
    mounts = {v.split(":")[1] for v in service["volumes"]}
    assert mounts == {"/data", _option(entry, "--index").rsplit("/", 1)[0]}
