#!/usr/bin/env bash
# README command 1: set up, then run the main job: joint training of the packaged default model on
# games and web tasks with embedded Ray (launch/configs/local.yaml). Extra arguments are config
# overrides, e.g. `bash launch/demo.sh run.iterations=4`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec .venv/bin/multiverse train --config launch/configs/local.yaml "$@"
