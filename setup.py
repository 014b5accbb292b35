"""Installable tfrestore package (see README.md)."""
from setuptools import find_packages, setup

setup(
    name="tfrestore",
    version="0.1.0",
    description=("Network inversion for TensorFlow 2 / Keras 3 classifiers with "
                 "handcrafted and learned (score-matched) patch priors."),
    packages=find_packages(include=["tfrestore", "tfrestore.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.3",
        "tensorflow-datasets>=4.9",
        "numpy",
        "matplotlib",
        "absl-py",
        # tf.summary.scalar/image need it (TF >= 2.20 no longer installs it); users watch runs in it.
        "tensorboard",
        # Bundled, licence-clean photographs for examples and tests (no network).
        "scikit-image",
    ],
    # bench: BM3D, the reference peer of bin/denoise.py (skipped with a note when absent).
    extras_require={"test": ["pytest"], "bench": ["bm3d"]},
)
