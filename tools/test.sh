#!/usr/bin/env bash
# The test command (CI runs exactly this, with no argument): set up, start the services
# the tests need (Docker engine, single-node SLURM), run the whole suite and print the
# slowest tests (--durations).
#
#   ./tools/test.sh                 the full suite (CI)
#   ./tools/test.sh --fast [ARGS]   the fast tier while developing: no Docker, no SLURM,
#                                   tests marked docker/slurm/slow left out (pytest --fast,
#                                   tests/conftest.py); target: under 3 minutes
#   ./tools/test.sh ARGS            the full suite with extra pytest arguments
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--fast" ]; then
  shift
  [ -x .venv/bin/python ] || ./tools/setup.sh
  exec .venv/bin/python -m pytest -q --fast --durations=15 "$@"
fi
./tools/setup.sh
if [ -x tools/ensure-docker.sh ]; then
  ./tools/ensure-docker.sh || echo "test: Docker engine unavailable; docker tests will skip with the reason" >&2
fi
if [ -x tools/slurm-cluster.sh ]; then
  ./tools/slurm-cluster.sh start || echo "test: SLURM cluster could not start; slurm tests will skip" >&2
fi
# tests measure at once: waiting up to 120 s for a quiet machine before every timing job
# (the default for people) would only stretch the suite, since the suite itself is the
# load; the waiter's own tests set or unset this themselves
export EFFLAB_QUIET_WAIT_S="${EFFLAB_QUIET_WAIT_S:-0}"
rc=0
.venv/bin/python -m pytest -ra --durations=30 "$@" || rc=$?
if [ -x tools/slurm-cluster.sh ]; then ./tools/slurm-cluster.sh stop >/dev/null 2>&1 || true; fi
exit $rc
