#!/usr/bin/env bash
# README command 1: set up, then run the main job on its embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec .venv/bin/multiverse demo "$@"
