"""An extractor object that keeps its settings: :class:`CentroidExtractor`.

tetra3rs 0.14's ``CentroidExtractor`` keeps working buffers between calls of
``.extract(image, ...)``, which takes the arguments of ``extract_centroids``.
skysolve's extraction allocates per frame (numpy), so here the object keeps
what is worth keeping: an :class:`ExtractionOptions`. ``.extract`` takes the
arguments of :func:`extract_centroids`; those given override the extractor's
settings for that call, and the result equals
``extract_centroids(image, ..., options=extractor.options)``.
"""

from __future__ import annotations

import inspect
from typing import Any

from numpy.typing import ArrayLike

from ..centroids import ExtractionResult
from ..errors import InvalidTypeError
from .extract import extract_centroids
from .options import ExtractionOptions

__all__ = ["CentroidExtractor"]


class CentroidExtractor:
    """Star extraction with settings kept between frames.

    Parameters
    ----------
    options : ExtractionOptions, optional
        The settings (default: those of :func:`extract_centroids`).
    **settings
        Fields of :class:`ExtractionOptions` that override ``options``, e.g.
        ``CentroidExtractor(sigma_threshold=10, local_bg_block_size=16)``.

    Notes
    -----
    ``CentroidExtractor()`` and ``.extract(image, sigma_threshold=...)`` are
    tetra3rs's calls. One extractor may be shared between threads (it holds
    only immutable settings) and pickles with its settings.
    """

    __slots__ = ("_options",)

    def __init__(self, options: ExtractionOptions | None = None, **settings: Any):
        if options is not None and not isinstance(options, ExtractionOptions):
            raise InvalidTypeError(
                f"options must be an ExtractionOptions, got {type(options).__name__}")
        base = ExtractionOptions() if options is None else options
        self._options = base.replace(**settings) if settings else base

    @property
    def options(self) -> ExtractionOptions:
        """The extractor's settings."""
        return self._options

    def extract(self, image: ArrayLike, *args: Any, **kwargs: Any) -> ExtractionResult:
        kwargs.setdefault("options", self._options)
        return extract_centroids(image, *args, **kwargs)

    extract.__doc__ = ("Detect stars in ``image``: :func:`extract_centroids` with the "
                       "extractor's settings,\nwhich the arguments given override.\n\n"
                       + (extract_centroids.__doc__ or "").split("\n", 1)[1].lstrip())

    def __repr__(self) -> str:
        default = ExtractionOptions()
        changed = [f"{n}={getattr(self._options, n)!r}" for n in self._options.names()
                   if not _same(getattr(self._options, n), getattr(default, n))]
        return f"CentroidExtractor({', '.join(changed)})"

    def __getstate__(self) -> dict[str, Any]:
        return {"options": self._options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._options = state["options"]


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


# .extract shows extract_centroids's parameters (with self first) to help() and IDEs
_sig = inspect.signature(extract_centroids)
CentroidExtractor.extract.__signature__ = _sig.replace(  # type: ignore[attr-defined]
    parameters=[inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                *_sig.parameters.values()])
del _sig
