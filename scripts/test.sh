#!/usr/bin/env bash
# Set up (idempotent) and run every check: ruff, mypy, the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check station station_testbed tests bench scripts
.venv/bin/ruff format --check station station_testbed tests bench scripts
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
