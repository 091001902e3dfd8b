#!/usr/bin/env bash
# Install everything and run the whole suite: lint, types, tests (unit, property,
# integration with the real model). Exits non-zero on any failure, including
# "no tests collected" (pytest exit code 5).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --dev
. .venv/bin/activate
export HF_HUB_OFFLINE=1
ruff check src tests bench
mypy
python -m pytest -q -p no:cacheprovider "$@"
