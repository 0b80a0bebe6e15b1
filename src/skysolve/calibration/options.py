"""Every calibration parameter, its default, docs and check: :class:`CalibrationOptions`."""

from __future__ import annotations

import dataclasses
from functools import partial

from .. import _args
from .._options import Options, option
from ..camera.distortion import MAX_POLYNOMIAL_ORDER

__all__ = ["CalibrationOptions", "MODELS"]

#: Distortion models the calibration fits.
MODELS = ("polynomial", "radial")


_model = partial(_args.choice, choices=MODELS)
_order = partial(_args.count, minimum=1, maximum=MAX_POLYNOMIAL_ORDER)
_clip = partial(_args.positive, allow_inf=True)


@dataclasses.dataclass(frozen=True, eq=False)
class CalibrationOptions(Options):
    """The parameters of one camera calibration (see the field documentation)."""

    image_width: int | None = option(None, type="int, optional", check=_args.optional_size, doc="""
        Image width in pixels. Default: the solves' camera models, which must all
        be of one size.""")
    image_height: int | None = option(None, type="int, optional", check=_args.optional_size, doc="""
        Image height in pixels.""")
    image_shape: tuple[int, int] | None = option(
        None, type="(int, int), optional", check=_args.optional_shape, doc="""
        numpy ``(height, width)``; an alternative to width and height.""")
    model: str = option("polynomial", type="{'polynomial', 'radial'}", check=_model, doc="""
        Distortion model to fit: a SIP-like polynomial of ``order``
        (:class:`~skysolve.PolynomialDistortion`) or Brown-Conrady
        ``k1, k2, k3, p1, p2`` (:class:`~skysolve.RadialDistortion`).""")
    order: int = option(4, type="int", check=_order, doc=f"""
        Polynomial order, 1 to {MAX_POLYNOMIAL_ORDER} (terms of degree 2..order plus
        the two non-conformal linear terms are fitted).""")
    max_iterations: int = option(10, type="int", check=_args.positive_count, doc="""
        Most Gauss-Newton steps (>= 1).""")
    sigma_clip: float = option(3.0, type="float", check=_clip, doc="""
        Pairs whose residual exceeds ``sigma_clip`` times the robust rms residual
        (px) are left out of the next step (``inf`` disables).""")
    convergence_threshold_px: float = option(0.01, type="float", check=_args.nonnegative, doc="""
        Stop when the inlier rms residual changes by less than this (px).""")
