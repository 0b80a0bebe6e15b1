"""The ``skysolve`` command line (``skysolve --help``).

Only the standard library is imported when the command starts, so that
``--help`` and ``--version`` answer at once.

May import: everything (it is the top of the package).
"""

from .main import EXIT_ERROR, EXIT_OK, EXIT_UNSOLVED, EXIT_USAGE, build_parser, main

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_UNSOLVED"]
