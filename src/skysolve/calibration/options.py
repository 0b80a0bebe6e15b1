"""Every calibration parameter, its default, docs and check: :class:`CalibrationOptions`."""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import _args
from .._options import Options, option
from ..camera.distortion import MAX_POLYNOMIAL_ORDER

__all__ = ["CalibrationOptions", "MODELS"]

#: Distortion models the calibration fits.
MODELS = ("polynomial", "radial")


def _size_or_none(value: Any, name: str) -> int | None:
    return _args.size(value, name, allow_none=True)


def _shape_or_none(value: Any, name: str) -> tuple[int, int] | None:
    if value is None:
        return None
    return _args.image_size(None, None, value)[::-1]


def _model(value: Any, name: str) -> str:
    return _args.choice(value, name, MODELS)


def _order(value: Any, name: str) -> int:
    return _args.count(value, name, minimum=1, maximum=MAX_POLYNOMIAL_ORDER)


def _iterations(value: Any, name: str) -> int:
    return _args.count(value, name, minimum=1)


def _clip(value: Any, name: str) -> float:
    return _args.positive(value, name, allow_inf=True)


def _threshold(value: Any, name: str) -> float:
    return _args.nonnegative(value, name)


@dataclasses.dataclass(frozen=True, eq=False)
class CalibrationOptions(Options):
    """The parameters of one camera calibration (see the field documentation)."""

    image_width: int | None = option(None, type="int, optional", check=_size_or_none, doc="""
        Image width in pixels. Default: the solves' camera models, which must all
        be of one size.""")
    image_height: int | None = option(None, type="int, optional", check=_size_or_none, doc="""
        Image height in pixels.""")
    image_shape: tuple[int, int] | None = option(
        None, type="(int, int), optional", check=_shape_or_none, doc="""
        numpy ``(height, width)``; an alternative to width and height.""")
    model: str = option("polynomial", type="{'polynomial', 'radial'}", check=_model, doc="""
        Distortion model to fit: a SIP-like polynomial of ``order``
        (:class:`~skysolve.PolynomialDistortion`) or Brown-Conrady
        ``k1, k2, k3, p1, p2`` (:class:`~skysolve.RadialDistortion`).""")
    order: int = option(4, type="int", check=_order, doc=f"""
        Polynomial order, 1 to {MAX_POLYNOMIAL_ORDER} (terms of degree 2..order plus
        the two non-conformal linear terms are fitted).""")
    max_iterations: int = option(10, type="int", check=_iterations, doc="""
        Most Gauss-Newton steps (>= 1).""")
    sigma_clip: float = option(3.0, type="float", check=_clip, doc="""
        Pairs whose residual exceeds ``sigma_clip`` times the robust rms residual
        (px) are left out of the next step (``inf`` disables).""")
    convergence_threshold_px: float = option(0.01, type="float", check=_threshold, doc="""
        Stop when the inlier rms residual changes by less than this (px).""")
