"""Classifiers shipped inside the package (package data), loadable by a short name.

`mobilenet_v2_tflite`: the ImageNet MobileNetV2 1.0 224 TFLite file of the Coral test data
(Apache-2.0, see README.md and LICENSE here), with its 1001 labels. Its weights are the
file's: `weights="imagenet"` (the default) means them, `"random"` is refused rather than
silently ignored. The `Classifier` keeps the file's name, so results made with the bundled
copy and with any other copy of the same file carry the same classifier name.
"""
import os

from tfrestore.classifiers.weights import WeightsError, parse_weights

__all__ = ["BUNDLED", "bundled_path", "load_bundled", "bundled_labels"]

_HERE = os.path.dirname(os.path.abspath(__file__))

# short name -> (model file, labels file, SHA-256 of the model file)
BUNDLED = {
    "mobilenet_v2_tflite": ("tf2_mobilenet_v2_1.0_224_ptq.tflite",
                            "tf2_mobilenet_v2_1.0_224_ptq_labels.txt",
                            "5d3137241276e79c86d14a74fe43581398ae0e815191d3dba45495b810840e8c"),
}


def _file(name, index):
    if name not in BUNDLED:
        raise ValueError(f"Unknown bundled classifier '{name}'. Bundled: {sorted(BUNDLED)}.")
    path = os.path.join(_HERE, BUNDLED[name][index])
    if not os.path.exists(path):
        # Only a broken installation gets here (package data left out of the wheel).
        raise WeightsError(f"The bundled file '{path}' is missing from this installation of "
                           f"tfrestore; reinstall it (pip install .) from a full clone.")
    return path


def bundled_path(name):
    """Path of the model file of bundled classifier `name`."""
    return _file(name, 0)


def bundled_labels(name):
    """The labels of bundled classifier `name`, in output order."""
    with open(_file(name, 1)) as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def sha256(path):
    from tfrestore.io import file_sha256
    return file_sha256(path)


def load_bundled(name, weights="imagenet", preprocessing=None, labels=None):
    """The `Classifier` of bundled network `name` (weights: the file's own)."""
    path = bundled_path(name)
    spec = parse_weights(weights)
    if spec.kind == "random":
        raise WeightsError(
            f"--weights=random is not available for '{name}': its weights are those of the "
            f"bundled TFLite file. Use a keras.applications network (e.g. "
            f"--classifier=mobilenet_v2 --weights=random) for random weights.")
    if spec.kind == "file" and os.path.abspath(spec.path) != path:
        raise WeightsError(
            f"--weights={spec.path} cannot be used with '{name}': its weights are those of "
            f"the bundled TFLite file. Omit --weights (or pass --weights=imagenet), or pass "
            f"another .tflite file as --classifier.")
    from tfrestore.classifiers.tflite import load_tflite
    return load_tflite(path, labels=labels if labels is not None else bundled_labels(name),
                       preprocessing=preprocessing)
