"""Installable tfrestore package (see README.md)."""
from setuptools import find_packages, setup

setup(
    name="tfrestore",
    version="0.1.0",
    description=("Network inversion for TensorFlow 2 / Keras 3 classifiers with "
                 "handcrafted and learned (score-matched) patch priors."),
    packages=find_packages(include=["tfrestore", "tfrestore.*"]) + ["tfrestore.bin"],
    # bin/ (the absl binaries) is installed as tfrestore.bin for the console entry points.
    package_dir={"tfrestore.bin": "bin"},
    # Data inside the package: ImageNet labels, and the bundled ImageNet MobileNetV2 (TFLite,
    # 4 MB, Apache-2.0) that is the default classifier. MANIFEST.in lists them for sdists.
    package_data={
        "tfrestore.classifiers": ["imagenet_labels.txt", "LICENSE-imagenet_labels.txt"],
        "tfrestore.classifiers.bundled": ["*.tflite", "*.txt", "LICENSE", "README.md"],
    },
    include_package_data=True,
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
        # scikit-image's wavelet denoiser (a bin/denoise.py peer) needs it; newer releases
        # no longer install it.
        "PyWavelets",
    ],
    # bench: BM3D, the reference peer of bin/denoise.py (skipped with a note when absent).
    extras_require={"test": ["pytest"], "bench": ["bm3d"]},
    entry_points={"console_scripts": [
        f"tfrestore-{name.replace('_', '-')}=tfrestore.console:{name}" for name in (
            "invert", "classify", "compare", "denoise", "featmap_stats", "search_weights",
            "train_inverter", "train_prior", "train_dae", "actmax", "caricature", "sample",
            "adversarial")]},
)
