#!/usr/bin/env bash
# The main job: set up, then reproduce every shipped paper at quick size and print
# the verdict table (before paper support existed: run edge-digits, print its table).
set -euo pipefail
cd "$(dirname "$0")/.."
./tools/setup.sh
[ -x tools/ensure-docker.sh ] && { ./tools/ensure-docker.sh || echo "run: no Docker engine; scripts run on the host" >&2; }
if .venv/bin/efflab reproduce --help >/dev/null 2>&1; then
  exec .venv/bin/efflab reproduce --all --quick --cores 2 "$@"
fi
exec .venv/bin/efflab run edge-digits --cores 2 "$@"
