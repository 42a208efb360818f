"""``python -m multiverse``: the ``multiverse`` command (the console script's main)."""

import sys

from multiverse.launch.cli import main

sys.exit(main())
