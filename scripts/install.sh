#!/usr/bin/env bash
# Installs dunflow into .venv (Python packages, Temporal binaries included). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "dunflow needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
# The designer's bpmn-js, exactly as locked in designer/package-lock.json.
if command -v npm >/dev/null 2>&1; then
  (cd designer && npm ci --no-audit --no-fund --silent)
else
  echo "npm not found: the designer at /designer needs it (bash scripts/browser.sh installs it)" >&2
fi
