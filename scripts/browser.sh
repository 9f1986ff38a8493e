#!/usr/bin/env bash
# Installs (Debian packages) what the designer and its browser tests need: Node.js and npm for
# bpmn-js, Chromium and its WebDriver for the tests. Needs root or sudo; does nothing when present.
set -euo pipefail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${1:-}" != "--node-only" ]; then  # `dunflow dev` needs Node.js for the designer, not Chromium
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
fi
if [ ${#missing[@]} -gt 0 ]; then
  as_root apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >&2
fi
