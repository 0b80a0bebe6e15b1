"""The two real star-tracker frames of the test data, and their reference pointings.

``data/`` holds two 1024 x 768 16-bit TIFF frames (ESA / Gustav Pettersson, from
the tetra3 project's test data, CC BY-SA 3.0 IGO; see ``data/NOTICE.md``).
The reference boresights were agreed by two independent plate solvers to
better than 0.005 degrees (18"), which bounds how tightly a test can check a
solve against them.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).parent / "data"
ALT40 = "2019-07-29T204726_Alt40_Azi-135_Try1.tiff"
ALT60 = "2019-07-29T204726_Alt60_Azi-135_Try1.tiff"
#: file name -> (RA, Dec) of the reference boresight, degrees (ICRS)
REFERENCE = {ALT40: (230.669, 11.036), ALT60: (240.464, 28.941)}
#: horizontal field of view of both frames, degrees
FOV_DEG = 11.4
