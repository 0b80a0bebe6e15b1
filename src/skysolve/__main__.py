"""``python -m skysolve``: the command line (see :mod:`skysolve.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
