"""Multiverse: seedable game and browser-task envs (``multiverse.envs``), one language-model policy
(``multiverse.agents``), RL on Ray and the command line (``multiverse.launch``).

This folder is installed as the ``multiverse`` package itself (pyproject's package-dir): it holds only what
``python -m multiverse`` needs, so importing a subpackage costs nothing more."""
