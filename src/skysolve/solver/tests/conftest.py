"""Fixtures shared by the solver's tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def hip2025(hip_catalog):
    """The Hipparcos stars propagated to epoch 2025.0, as the simulated fields see them."""
    return hip_catalog.propagate(2025.0)
