#!/usr/bin/env bash
# Installs everything the tests need (venv, Temporal binaries, PostgreSQL, Node.js and Chromium)
# and runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/browser.sh
bash scripts/install.sh
export DUNFLOW_TEST_POSTGRES_URL=${DUNFLOW_TEST_POSTGRES_URL:-$(bash scripts/postgres.sh)}
exec .venv/bin/python -m pytest "$@"
