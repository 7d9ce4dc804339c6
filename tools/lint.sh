#!/usr/bin/env bash
# Static checks CI runs before the tests: ruff (lint + format) and the import-linter
# layer contracts in pyproject.toml (imports flow downward only).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check src tests bench scripts
.venv/bin/ruff format --check src tests bench scripts
.venv/bin/lint-imports
