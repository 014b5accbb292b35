"""tfrestore: reconstruct images from what a CNN classifier computes inside.

Importing the package registers its Keras layers (preprocessing, AlexNet's LRN,
patch priors, inverting modules) so that `keras.models.load_model` restores them.
"""
import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfrestore import classifiers  # noqa: E402,F401
from tfrestore import inverters  # noqa: E402,F401
from tfrestore import priors  # noqa: E402,F401

__version__ = "0.1.0"
