#!/usr/bin/env bash
# Installs (Debian package) and starts a PostgreSQL server for the store tests, and prints
# the database URL to use. Needs root or sudo for the install; reuses a running server.
set -euo pipefail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
  as_root apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main"' | grep -q .; then
  as_root pg_createcluster "$version" main >&2
fi
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $4}' | grep -q online; then
  as_root pg_ctlcluster "$version" main start >&2
fi
port=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')
as_root su postgres -c "psql -p $port -tAc \"SELECT 1 FROM pg_roles WHERE rolname='dunflow'\"" | grep -q 1 \
  || as_root su postgres -c "psql -p $port -qc \"CREATE ROLE dunflow LOGIN SUPERUSER PASSWORD 'dunflow'\"" >&2
as_root su postgres -c "psql -p $port -tAc \"SELECT 1 FROM pg_database WHERE datname='dunflow_test'\"" | grep -q 1 \
  || as_root su postgres -c "createdb -p $port -O dunflow dunflow_test" >&2
echo "postgresql+psycopg://dunflow:dunflow@127.0.0.1:$port/dunflow_test"
