#!/usr/bin/env bash
# README command 2: set up, lint (ruff), then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
# Lint first (the rules and why: pyproject.toml's [tool.ruff]); a finding fails the command before the suite starts.
if ! .venv/bin/ruff check .; then
  echo "test: ruff check found the problems above; .venv/bin/ruff check --fix . fixes the safe ones, the rest by hand" >&2
  exit 1
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy
# Browser timeouts x5: a shared CI host ran this suite 5-7x slower than a quiet 2-core machine, and there a
# healthy browser step outlasted the 20 s default (it was killed as hung). Tests of the timeouts set theirs.
export MULTIVERSE_TIMEOUT_SCALE="${MULTIVERSE_TIMEOUT_SCALE:-5}"
# the 25 slowest tests are listed at the end (the suite budget is 20 minutes).
# two pytest workers (pytest-xdist): Chromium and the tiny model leave room for both on 2 cores;
# MULTIVERSE_TEST_WORKERS=0 runs in one process. --dist loadgroup: tests marked xdist_group(name) share a
# worker (and so their module fixtures, such as the 4-iteration training run)
exec .venv/bin/python -m pytest -n "${MULTIVERSE_TEST_WORKERS:-2}" --dist loadgroup --durations=25 "$@"
