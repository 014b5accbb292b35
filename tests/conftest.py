"""Shared test fixtures. Tests run offline, on CPU, with small images and few steps."""
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TFRESTORE_MAX_STEPS", "20")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(REPO, "..", "shared", "data")


@pytest.fixture
def shared_data():
    """Path of ../shared/data, or skip: it exists on developer machines and in CI only."""
    if not os.path.isdir(SHARED_DATA):
        pytest.skip("../shared/data is absent (only on developer machines and CI)")
    return os.path.abspath(SHARED_DATA)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
