"""Where classifier weights come from: `imagenet`, `random` (seeded) or a file path.

Nothing here ever substitutes one source for another: if ImageNet weights cannot
be had, the error says which file, from where, where Keras caches it, and what the
alternatives are.
"""
import os

import keras

__all__ = ["WeightsError", "WeightSpec", "parse_weights", "imagenet_unavailable",
           "keras_cache_dir"]


class WeightsError(RuntimeError):
    """Weights cannot be loaded; the message names the file and the fix."""


def keras_cache_dir():
    base = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return os.path.join(base, "models")


class WeightSpec:
    """Parsed `--weights` value: kind in {"imagenet", "random", "file"}."""

    def __init__(self, kind, path=None, seed=0):
        self.kind, self.path, self.seed = kind, path, seed

    def __str__(self):
        if self.kind == "file":
            return os.path.abspath(self.path)
        if self.kind == "random":
            return f"random(seed={self.seed})"
        return self.kind


def parse_weights(spec, seed=0):
    """'imagenet' | 'random' | PATH -> WeightSpec (a missing path is an error now)."""
    if isinstance(spec, WeightSpec):
        return spec
    if spec in (None, "", "imagenet"):
        return WeightSpec("imagenet")
    if spec == "random":
        return WeightSpec("random", seed=seed)
    if not os.path.exists(spec):
        raise WeightsError(
            f"Weights file '{spec}' does not exist. Pass --weights=imagenet (downloads "
            f"through Keras, needs network), --weights=random (seeded random weights), "
            f"or the path of an existing .weights.h5, .keras, .npy or .tflite file.")
    return WeightSpec("file", path=spec)


def imagenet_unavailable(network, filename, url, cause):
    """The error raised when ImageNet weights cannot be downloaded or read."""
    return WeightsError(
        f"ImageNet weights for {network} are not available: {cause}\n"
        f"  file:  {filename}\n  url:   {url}\n  cache: {keras_cache_dir()}\n"
        f"Either connect to the network once (Keras caches the file), copy the file into "
        f"the cache folder, pass --weights=PATH to a local copy, or use "
        f"--weights=random (seeded, for testing only).")


def random_init(seed):
    """Make the next model construction deterministic."""
    keras.utils.set_random_seed(int(seed))
