#!/usr/bin/env bash
# The test command (CI runs exactly this): set up, start the services the tests
# need (Docker engine, single-node SLURM), run pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./tools/setup.sh
if [ -x tools/ensure-docker.sh ]; then
  ./tools/ensure-docker.sh || echo "test: Docker engine unavailable; docker tests will skip with the reason" >&2
fi
if [ -x tools/slurm-cluster.sh ]; then
  ./tools/slurm-cluster.sh start || echo "test: SLURM cluster could not start; slurm tests will skip" >&2
fi
rc=0
.venv/bin/python -m pytest -ra "$@" || rc=$?
if [ -x tools/slurm-cluster.sh ]; then ./tools/slurm-cluster.sh stop >/dev/null 2>&1 || true; fi
exit $rc
