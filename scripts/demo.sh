#!/usr/bin/env bash
# Set up (idempotent) and run the station's main job on its embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/station demo "$@"
