#!/usr/bin/env bash
# Install, ingest the bundled sample corpus into ./demo-index.sqlite and answer a search.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1
headrace ingest samples/handbook --index ./demo-index.sqlite
headrace search "how do I rotate the keys" -k 3 --index ./demo-index.sqlite
