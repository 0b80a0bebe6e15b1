"""A deeper second extraction for a frame whose solve found too few stars.

A solve can fail for want of stars: a short exposure, a small aperture, haze or a
bright sky leave few above the extraction's threshold (5 noise sigmas by default).
The two real 1024x768 star-tracker frames with three times their noise added keep
4-7 of their 33-39 stars at 5 sigmas, and one of them solved 1 of 4 such noise
draws; at 3 sigmas they keep 9-14 of them among 150-240 detections, most of them
noise, and solve 4 of 4. The solver takes its patterns from the brightest
centroids and verifies every answer against the whole list, so the noise costs
search time, not answers: frames of pure noise extracted at 3 sigmas (160-210
detections) match nothing.

:func:`solve_deeper` is that second try, taken only after a failure for want of
stars: status ``'too_few'`` or ``'no_match'`` with fewer than :data:`FEW_STARS`
centroids kept. A frame that keeps many stars and matches nothing (another
database's scale, a wrong hint) is not short of stars; a ``'timeout'`` is no
question of depth. The threshold is the extraction's
``retry_sigma_threshold`` (3 by default; None: no second try). The second solve
verifies at most :data:`DEEPER_HYPOTHESES` hypotheses and takes at most
:data:`DEEPER_TIMEOUT_MS`.

The deeper list's brightest centroids are the first list's (noise between 3 and 5
sigmas is fainter than anything found at 5), so a match in it comes from patterns of
those few bright stars, found early: what the deeper list adds is the fainter stars
that verify the match. Its noise makes hypotheses instead, thousands of them, and
verifying them is most of the time a search of it takes. On frames short of stars (the
noisy real frames above; simulated 1024x768 frames of 5-30 deg with exposures that
leave 0-19 centroids at 5 sigmas; simulated 180 deg all-sky frames, told their
projection, as faint; the real frames with their noise and cosmic rays, hot pixels or
the benchmark's mixture added), every deeper solve that succeeded verified at most 181
hypotheses; the noisy real frames' deeper lists that did not, and those of pure noise,
verified 2,700-6,600 when searched to the end, with no limit, and matched nothing. A
starless or clouded frame took the whole second to give up; with the budget 0.25-0.35 s
(the default database, ``benchmarks/giveup_image.py``). A search whose time goes to
looking up patterns rather than verifying them (an all-sky lens's hundreds of
focal-length windows: its successful deeper solves looked up to 127,000 patterns,
within 60 ms) still has the time limit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..extraction import ExtractionResult, extract
from ..extraction.options import ExtractionOptions

__all__ = ["solve_deeper", "retry_deeper", "star_count", "deeper_threshold", "deeper_timeout",
           "limited", "solve_timeout_of", "FEW_STARS", "DEEPER_TIMEOUT_MS",
           "DEEPER_HYPOTHESES", "deeper_limits"]

#: A failed solve of fewer centroids than this may have wanted stars: the real frames
#: keep 33-39 at 5 sigmas, and with three times their noise 4-7.
FEW_STARS = 20
#: The failures a deeper list may mend.
_WANTING = ("too_few", "no_match")
#: The longest (ms) the deeper list's solve may take, or the solve's own limit when
#: shorter: the noisy real frames' deeper lists solved in 0.01-0.4 s, while giving up on
#: a starless frame's 150-250 detections took 0.5-1.9 s (told no scale: the database's
#: range, wider fields and the fisheye searches) before :data:`DEEPER_HYPOTHESES`
#: bounded it; it still bounds a search whose time goes to looking up patterns.
DEEPER_TIMEOUT_MS = 1000.0
#: The most hypotheses the deeper list's solve verifies (its ``max_hypotheses_verified``,
#: or the solve's own when fewer): the successful deeper solves measured (see above)
#: verified at most 181, giving up on a starless frame thousands.
DEEPER_HYPOTHESES = 2000


def deeper_timeout(told_ms: float | None, limit_ms: float = DEEPER_TIMEOUT_MS) -> float:
    """The time limit (ms) of the deeper list's solve: ``limit_ms``, or the solve's own
    limit ``told_ms`` when shorter (None or 0: it has none)."""
    return limit_ms if not told_ms else min(float(told_ms), limit_ms)


def deeper_limits(told_ms: float | None, told_hypotheses: int | None,
                  limit_ms: float = DEEPER_TIMEOUT_MS) -> dict[str, Any]:
    """The limits of the deeper list's solve, as keyword arguments of
    :meth:`~skysolve.SolverDatabase.solve_from_centroids`: ``solve_timeout_ms`` from
    :func:`deeper_timeout`, and ``max_hypotheses_verified`` :data:`DEEPER_HYPOTHESES`,
    or the solve's own ``told_hypotheses`` when fewer (None: it has none)."""
    most = (DEEPER_HYPOTHESES if told_hypotheses is None
            else min(told_hypotheses, DEEPER_HYPOTHESES))
    return {"solve_timeout_ms": deeper_timeout(told_ms, limit_ms),
            "max_hypotheses_verified": most}


def limited(solve_kwargs: dict[str, Any], limit_ms: float) -> dict[str, Any]:
    """Keyword arguments of :meth:`~skysolve.SolverDatabase.solve_from_centroids` with
    the deeper list's limits (:func:`deeper_limits`): its time limit at most
    ``limit_ms``, its hypotheses at most :data:`DEEPER_HYPOTHESES`."""
    return {**solve_kwargs, **deeper_limits(solve_timeout_of(solve_kwargs),
                                            _told(solve_kwargs, "max_hypotheses_verified"),
                                            limit_ms)}


def solve_timeout_of(solve_kwargs: dict[str, Any]) -> float | None:
    """The ``solve_timeout_ms`` the keyword arguments of
    :meth:`~skysolve.SolverDatabase.solve_from_centroids` set: their own, else their
    ``options``', else the default."""
    return _told(solve_kwargs, "solve_timeout_ms")


def _told(solve_kwargs: dict[str, Any], name: str) -> Any:
    """The option ``name`` the keyword arguments of
    :meth:`~skysolve.SolverDatabase.solve_from_centroids` set: their own, else their
    ``options``', else the default."""
    from ..solver.options import SolveOptions

    if name in solve_kwargs:
        return solve_kwargs[name]
    base = solve_kwargs.get("options")
    return getattr(base if isinstance(base, SolveOptions) else SolveOptions(), name)


def deeper_threshold(kept: int, result: Any, sigma_threshold: float,
                     retry_sigma_threshold: float | None) -> float | None:
    """The threshold (noise sigmas) to extract a frame again at, or None: when ``result``,
    the solve of the ``kept`` centroids its extraction at ``sigma_threshold`` kept,
    failed for want of stars (``'too_few'`` or ``'no_match'``, fewer than
    :data:`FEW_STARS` kept), ``retry_sigma_threshold`` when it is lower."""
    if (result or retry_sigma_threshold is None or retry_sigma_threshold >= sigma_threshold
            or getattr(result, "status", None) not in _WANTING or kept >= FEW_STARS):
        return None
    return retry_sigma_threshold


def star_count(found: Any) -> int:
    """How many of an extraction's centroids are stars: its doubtful ones (listed after
    them: a binned frame's sharp blobs too faint to tell from hot pixels, a JPEG's
    compressed impulses) are not counted, so that a frame they pad out past
    :data:`FEW_STARS` is still extracted deeper. Any other list: its length."""
    if isinstance(found, ExtractionResult):
        return int(np.count_nonzero(found.flags != "doubtful"))
    return len(found)


def solve_deeper(image: Any, found: Any, result: Any, extraction: ExtractionOptions,
                 solve_found: Callable[[Any], Any]) -> tuple[Any, Any]:
    """The solve of a deeper extraction of ``image`` when ``result`` failed for want of
    stars.

    Parameters
    ----------
    image : ndarray, MaskedArray or NDData
        The image ``found`` was extracted from (what
        :func:`~skysolve.extraction.extract` takes).
    found : ExtractionResult
        Its extraction with ``extraction``.
    result : SolveResult or SolveFailure
        The solve of ``found``.
    extraction : ExtractionOptions
        The options ``found`` was extracted with; ``retry_sigma_threshold`` is the
        deeper threshold (in noise sigmas; no second try when None or not below
        ``sigma_threshold``).
    solve_found : callable
        ``solve_found(extraction_result, timeout_ms) -> SolveResult | SolveFailure``:
        the same solve, of another list, with the deeper list's limits
        (:func:`deeper_limits`: its time limit at most ``timeout_ms``, its hypotheses at
        most :data:`DEEPER_HYPOTHESES`).

    Returns
    -------
    (result, found)
        The deeper extraction and its solve when that solve succeeded; else
        ``result`` and ``found`` as given (the failure said of the list asked for).
    """
    return retry_deeper(found, result, extraction.sigma_threshold,
                        extraction.retry_sigma_threshold,
                        lambda sigma: extract(image, extraction.replace(sigma_threshold=sigma)),
                        solve_found)


def retry_deeper(found: Any, result: Any, sigma_threshold: float,
                 retry_sigma_threshold: float | None, extract_at: Callable[[float], Any],
                 solve_found: Callable[[Any, float], Any],
                 count: Callable[[Any], int] | None = None) -> tuple[Any, Any]:
    """:func:`solve_deeper` for any kind of source list: ``found``, extracted at
    ``sigma_threshold`` and solved into ``result``; ``extract_at(sigma)`` the same
    extraction at another threshold, ``solve_found`` as there, ``count(list)`` its
    stars (default :func:`star_count`). Returns ``(result, found)`` of the deeper list
    when it solved, else as given."""
    count = star_count if count is None else count
    sigma = deeper_threshold(count(found), result, sigma_threshold, retry_sigma_threshold)
    if sigma is None:
        return result, found
    deeper = extract_at(sigma)
    if count(deeper) <= count(found):
        return result, found
    again = solve_found(deeper, DEEPER_TIMEOUT_MS)
    return (again, deeper) if again else (result, found)
