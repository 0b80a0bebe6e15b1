"""``python -m skysolve``: the command line (see :mod:`skysolve.cli.main`)."""

import sys

from .cli.main import main

if __name__ == "__main__":
    sys.exit(main())
