"""Multiverse: seedable game and browser-task envs (``multiverse.envs``), one language-model policy
(``multiverse.agents``), RL on Ray and the command line (``multiverse.launch``).

This folder is installed as the ``multiverse`` package itself (pyproject's package-dir): it holds only what
``python -m multiverse`` needs, so importing a subpackage costs nothing more."""

import os as _os

# torch's OpenMP threads spin between operations by default. Beside anything else that wants the CPU (Chromium,
# rollout workers, another torch thread on a hyperthread) one spinning thread stalls the rest: on the 2-vCPU
# sandbox an update with 2 threads ran 5-10x slower than with 1, and as fast with passive waiting
# (bench/README.md, learning throughput). Read once, when torch loads: set here, before any subpackage imports it;
# a value the user set is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
