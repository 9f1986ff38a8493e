#!/usr/bin/env bash
# Installs dunflow and starts it: Temporal dev server with its UI, the worker and the API.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/browser.sh --node-only
bash scripts/install.sh
exec .venv/bin/dunflow dev
