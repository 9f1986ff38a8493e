#!/usr/bin/env bash
# Installs everything the tests need (venv, Temporal binaries, PostgreSQL) and runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export DUNFLOW_TEST_POSTGRES_URL=${DUNFLOW_TEST_POSTGRES_URL:-$(bash scripts/postgres.sh)}
exec .venv/bin/python -m pytest "$@"
