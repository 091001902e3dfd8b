#!/usr/bin/env bash
# Creates .venv and installs headrace with the bundled model (and dev tools with --dev).
# torch is pinned first: an unpinned torch pulls gigabytes of CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
pip install -q --disable-pip-version-check torch==2.13.0
extras="model"
[ "${1:-}" = "--dev" ] && extras="model,dev"
pip install -q --disable-pip-version-check -e ".[$extras]"
