"""A SIP header that cannot hold a camera's distortion to the tolerance asked says so."""

import numpy as np
import pytest

from skysolve.camera import CameraModel
from skysolve.camera.distortion import RadialDistortion
from skysolve.io.wcs import camera_to_wcs


def test_a_sip_fit_far_from_its_tolerance_warns_and_a_close_one_does_not():
    strong = CameraModel(500.0, 1024, 768, projection="equisolid",
                         distortion=RadialDistortion(-0.3, scale=500.0))
    with pytest.warns(UserWarning, match="sip_tolerance_px"):
        camera_to_wcs(strong, np.eye(3))
    mild = CameraModel(1000.0, 1024, 768, distortion=RadialDistortion(-0.001, scale=1000.0))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        camera_to_wcs(mild, np.eye(3))
