"""What is on the sky: star catalogs, the brightness-layered sky index, aberration.

Modules
-------
``catalogs``
    :class:`Catalog` and the Hipparcos 2, Gaia DR3 and CSV/Table loaders,
    proper-motion propagation.
``index``
    :class:`SkyIndex`: cone queries over stars sorted brightest first.
``aberration``
    Earth's barycentric velocity and stellar aberration of directions.

May import: ``errors``, ``_args``, ``geometry``.
"""

from .aberration import aberrate, earth_barycentric_velocity, unaberrate
from .catalogs import (
    Catalog,
    CatalogStar,
    load_catalog,
    load_catalog_csv,
    load_gaia,
    load_hipparcos,
)
from .index import SkyIndex

__all__ = ["Catalog", "CatalogStar", "SkyIndex", "aberrate", "earth_barycentric_velocity",
           "load_catalog", "load_catalog_csv", "load_gaia", "load_hipparcos", "unaberrate"]
