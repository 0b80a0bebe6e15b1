"""Sphinx configuration of the skysolve documentation (``make docs``).

The API pages are generated from the numpydoc docstrings (``numpydoc``); the
user guide's examples are doctests that ``make test`` runs (pytest collects
``docs/*.rst``). The build must stay free of warnings: ``make docs`` passes ``-W``.
"""

from __future__ import annotations

import skysolve

project = "skysolve"
author = "The skysolve developers"
copyright = "2026, the skysolve developers"
release = version = skysolve.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
]
exclude_patterns = ["_build", "architecture.md"]
templates_path: list[str] = []
html_static_path = ["_static"]
html_theme = "alabaster"
html_theme_options = {"description": "Lost-in-space plate solving and camera calibration",
                      "fixed_sidebar": True}
html_title = f"skysolve {release}"

autodoc_member_order = "bysource"
autodoc_typehints = "none"          # the numpydoc "Parameters" sections say it all
numpydoc_show_class_members = False  # members are listed explicitly in api.rst
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
nitpicky = False
suppress_warnings = ["ref.citation"]
