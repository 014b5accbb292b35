"""BVLC Caffe AlexNet (and the CaffeNet layer order) as a Keras model.

The port computes what Caffe computes (verified layer by layer against a plain-NumPy
implementation in tests/test_alexnet.py):

    data   227x227x3, BGR, mean-subtracted (0-255 range)
    conv1  96 x 11x11 / 4, VALID -> 55x55, ReLU   | CaffeNet order:
    lrn1   across channels n=5, alpha=1e-4, beta=0.75, k=1   | pool1 then lrn1
    pool1  max 3x3 / 2 -> 27x27                   |
    conv2  256 x 5x5, pad 2, 2 groups, ReLU; lrn2; pool2 -> 13x13 (CaffeNet: pool2, lrn2)
    conv3  384 x 3x3, pad 1, ReLU
    conv4  384 x 3x3, pad 1, 2 groups, ReLU
    conv5  256 x 3x3, pad 1, 2 groups, ReLU; pool5 -> 6x6
    fc6, fc7  4096, ReLU (Caffe's dropout acts at training time only: left out)
    fc8    1000; softmax

Caffe pads symmetrically, so every "pad p" is an explicit ZeroPadding2D(p) before a
VALID convolution. Caffe's pooling rounds output sizes up, TensorFlow's down; for
AlexNet's sizes (55, 27, 13) both give the same (27, 13, 6), so VALID pooling is exact.
The grouped convolutions (conv2, conv4, conv5) are `SplitGroupConv2D` layers: Conv2D's
kernel shape and the same outputs, but one plain convolution per group, because
TensorFlow's grouped-convolution gradient is slow on CPU (bench/bench_alexnet_groups.py).

Weights: `bvlc_alexnet.npy`, the widely used conversion of the Caffe model by
caffe-tensorflow (distributed by M. Guerzhoy): a pickled dict
layer name -> [W, b] with conv W in [kh, kw, in_channels / groups, out] (Caffe's
[out, in, kh, kw] transposed by (2, 3, 1, 0)) and fc W in [in, out]. For fc6,
caffe-tensorflow re-orders the 9216 rows from Caffe's (c, h, w) flattening to TensorFlow's
(h, w, c) one (reshape to [4096, 256, 6, 6], transpose (2, 3, 1, 0), reshape to
[9216, 4096]), which is exactly what Keras's Flatten produces on an NHWC pool5, so the
file loads without any further permutation.
"""
import io

import keras
import numpy as np

from tfrestore.classifiers.applications import imagenet_labels
from tfrestore.classifiers.base import Classifier
from tfrestore.classifiers.layers import LRN, SplitGroupConv2D
from tfrestore.classifiers.preprocessing import Preprocessing
from tfrestore.classifiers.weights import (WeightsError, imagenet_unavailable,
                                          parse_weights, random_init)
from tfrestore.io import atomic_write

__all__ = ["build_alexnet", "load_alexnet", "alexnet_preprocessing", "read_alexnet_npy",
           "set_alexnet_weights", "alexnet_weights", "save_alexnet_npy", "ALEXNET_ALIASES",
           "PARAM_LAYERS", "ALEXNET_NPY_URL", "ALEXNET_NPY_SHA256", "CAFFE_MEAN_BGR",
           "THESIS_GLOBAL_MEAN"]

ALEXNET_NPY_URL = "https://www.cs.toronto.edu/~guerzhoy/tf_alexnet/bvlc_alexnet.npy"
# SHA-256 of bvlc_alexnet.npy as published alongside a reproduction that downloaded it
# from ALEXNET_NPY_URL (not re-computed here: the project's machines are offline).
# Keras re-checks it after every download; a mismatch is reported, never ignored.
ALEXNET_NPY_SHA256 = "1294ef51496c52f2e4879ee3b5e1da22c35d61f3240937491b4469403d5428cc"
CAFFENET_CAFFEMODEL_URL = ("http://dl.caffe.berkeleyvision.org/"
                           "bvlc_reference_caffenet.caffemodel")

# Per-channel mean of Caffe's ilsvrc_2012_mean.npy (B, G, R), the usual stand-in for the
# full mean image that Caffe subtracts before cropping.
CAFFE_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)
# The thesis code subtracted one global mean from all channels.
THESIS_GLOBAL_MEAN = 114.799

PARAM_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
# name -> (filters, kernel, stride, pad, groups)
_CONVS = {"conv1": (96, 11, 4, 0, 1), "conv2": (256, 5, 1, 2, 2), "conv3": (384, 3, 1, 1, 1),
          "conv4": (384, 3, 1, 1, 2), "conv5": (256, 3, 1, 1, 2)}

# Keras layer names already are the thesis names (conv1 ... fc8, lrn1, lrn2, pool1, pool2,
# pool5, softmax); these add Caffe's own names and an explicit "fc8/lin".
ALEXNET_ALIASES = {"norm1": "lrn1", "norm2": "lrn2", "prob": "softmax", "fc8/lin": "fc8"}


def alexnet_preprocessing(mean="caffe"):
    """RGB 0-255 -> AlexNet input (BGR, mean-subtracted) as a `Preprocessing` layer.

    Args:
      mean: "caffe" (per-channel ImageNet mean, `CAFFE_MEAN_BGR`), "global" (the thesis
        code's single mean 114.799 for every channel), or three numbers in B, G, R order.
    """
    if isinstance(mean, str):
        if mean == "caffe":
            mean_bgr = CAFFE_MEAN_BGR
        elif mean == "global":
            mean_bgr = (THESIS_GLOBAL_MEAN,) * 3
        else:
            raise ValueError(f"Unknown AlexNet mean '{mean}': use 'caffe', 'global' or "
                             f"three numbers (B, G, R).")
    else:
        mean_bgr = tuple(float(m) for m in mean)
        if len(mean_bgr) != 3:
            raise ValueError(f"AlexNet mean needs 3 values (B, G, R), got {mean!r}.")
    # Preprocessing takes the mean in RGB order and reverses it together with the channels.
    return Preprocessing(mean=mean_bgr[::-1], bgr=True, name="preprocessing")


def _conv(x, name, init):
    filters, kernel, stride, pad, groups = _CONVS[name]
    if pad:
        x = keras.layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
    # Split groups: Conv2D(groups=2) is the same convolution but its CPU gradient is slow.
    return SplitGroupConv2D(filters, kernel, strides=stride, padding="valid", groups=groups,
                            activation="relu", name=name, **init)(x)


def _pool(x, name):
    return keras.layers.MaxPooling2D(3, strides=2, padding="valid", name=name)(x)


def build_alexnet(caffenet=False, num_classes=1000, random_weights=True):
    """The AlexNet (or CaffeNet-order) Keras model on preprocessed 227x227 BGR input.

    Args:
      caffenet: pool before LRN in blocks 1 and 2.
      num_classes: width of fc8.
      random_weights: Keras's default initialisation (seed it with
        `keras.utils.set_random_seed` first); False gives zeros, which is quicker when the
        weights are about to be overwritten from a file.
    """
    init = {} if random_weights else dict(kernel_initializer="zeros")
    inp = keras.Input((227, 227, 3), name="data")
    x = inp
    for block in (1, 2):
        x = _conv(x, f"conv{block}", init)
        lrn = LRN(local_size=5, alpha=1e-4, beta=0.75, k=1.0, name=f"lrn{block}")
        pool = lambda t, b=block: _pool(t, f"pool{b}")  # noqa: E731
        x = lrn(pool(x)) if caffenet else pool(lrn(x))
    x = _conv(x, "conv3", init)
    x = _conv(x, "conv4", init)
    x = _conv(x, "conv5", init)
    x = _pool(x, "pool5")
    x = keras.layers.Flatten(name="flatten")(x)  # (h, w, c) order, as the .npy expects
    x = keras.layers.Dense(4096, activation="relu", name="fc6", **init)(x)
    x = keras.layers.Dense(4096, activation="relu", name="fc7", **init)(x)
    x = keras.layers.Dense(num_classes, name="fc8", **init)(x)
    out = keras.layers.Softmax(name="softmax")(x)
    return keras.Model(inp, out, name="caffenet" if caffenet else "alexnet")


# ---------------------------------------------------------------------- weights

def read_alexnet_npy(path):
    """{layer: (W, b)} from a caffe-tensorflow style .npy (pickled dict).

    Accepts values as [W, b] or {"weights": W, "biases": b}. The file is unpickled:
    load only files from a source you trust.
    """
    try:
        obj = np.load(path, allow_pickle=True, encoding="latin1")
        if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
            obj = obj.item()
    except Exception as e:
        raise WeightsError(f"Cannot read AlexNet weights from '{path}': "
                           f"{type(e).__name__}: {e}") from e
    if not isinstance(obj, dict):
        raise WeightsError(f"'{path}' is not an AlexNet .npy weights file: expected a pickled "
                           f"dict layer name -> [W, b], found {type(obj).__name__}.")
    params = {}
    for key, value in obj.items():
        name = key.decode() if isinstance(key, bytes) else str(key)
        if isinstance(value, dict):
            value = {(k.decode() if isinstance(k, bytes) else k): v for k, v in value.items()}
            value = [value.get("weights"), value.get("biases")]
        if not isinstance(value, (list, tuple)) or len(value) != 2 or any(v is None for v in value):
            raise WeightsError(f"'{path}': entry '{name}' must be [W, b] "
                               f"(or {{'weights': W, 'biases': b}}).")
        params[name] = (np.asarray(value[0]), np.asarray(value[1]))
    return params


def set_alexnet_weights(model, params, source="weights"):
    """Assign {layer: (W, b)} to `model`'s conv1..fc8, checking names and shapes first."""
    missing = [n for n in PARAM_LAYERS if n not in params]
    extra = sorted(set(params) - set(PARAM_LAYERS))
    if missing or extra:
        raise WeightsError(f"{source}: AlexNet weights must have exactly the layers "
                           f"{', '.join(PARAM_LAYERS)}; missing: {missing or 'none'}, "
                           f"unexpected: {extra or 'none'}.")
    for name in PARAM_LAYERS:
        layer = model.get_layer(name)
        for what, arr, var in zip(("W", "b"), params[name], (layer.kernel, layer.bias)):
            if tuple(arr.shape) != tuple(var.shape):
                raise WeightsError(
                    f"{source}: layer '{name}' {what} has shape {tuple(arr.shape)} but the "
                    f"Keras AlexNet expects {tuple(var.shape)} (conv W as [kh, kw, "
                    f"in_channels/groups, out], fc W as [in, out], fc6 rows in (h, w, c) "
                    f"order as caffe-tensorflow writes them).")
    for name in PARAM_LAYERS:
        w, b = params[name]
        model.get_layer(name).set_weights([w.astype("float32", copy=False),
                                           b.astype("float32", copy=False)])


def _model_of(obj):
    return obj.model if isinstance(obj, Classifier) else obj


def alexnet_weights(classifier):
    """{layer: [W, b]} (NumPy) of an AlexNet `Classifier` or Keras model."""
    model = _model_of(classifier)
    return {n: [np.asarray(v) for v in model.get_layer(n).get_weights()] for n in PARAM_LAYERS}


def save_alexnet_npy(classifier, path):
    """Write an AlexNet's weights in the bvlc_alexnet.npy format (atomically)."""
    buf = io.BytesIO()
    np.save(buf, alexnet_weights(classifier), allow_pickle=True)
    atomic_write(path, buf.getvalue())
    return path


def _download_imagenet(caffenet):
    if caffenet:
        # bvlc_alexnet.npy holds AlexNet's weights; putting them into the CaffeNet order
        # would give a network nobody trained. No converted CaffeNet file is published.
        raise imagenet_unavailable(
            "CaffeNet", "bvlc_reference_caffenet.caffemodel", CAFFENET_CAFFEMODEL_URL,
            "no pre-converted .npy of CaffeNet is published; convert the caffemodel with "
            "caffe-tensorflow (conv W [kh, kw, in/groups, out], fc6 rows in (h, w, c) order) "
            "and pass weights=PATH.npy.")
    try:
        # Looked up at call time (not imported by name) so tests can simulate offline.
        return keras.utils.get_file("bvlc_alexnet.npy", ALEXNET_NPY_URL,
                                    file_hash=ALEXNET_NPY_SHA256, hash_algorithm="sha256",
                                    cache_subdir="models")
    except Exception as e:  # network errors and checksum mismatches alike
        raise imagenet_unavailable("AlexNet", "bvlc_alexnet.npy", ALEXNET_NPY_URL,
                                   f"{type(e).__name__}: {e}") from e


def _load_keras_weights(model, path):
    """Weights from a .keras model or .weights.h5 file saved from an AlexNet (split or not)."""
    try:
        if path.lower().endswith(".keras"):
            params = alexnet_weights(keras.models.load_model(path, compile=False))
        else:
            # Saved from `Classifier.model` (activations split off) or from the plain
            # build_alexnet() model: rebuild the matching structure, then copy by name.
            try:
                model.load_weights(path)
                return
            except Exception:
                twin = Classifier("alexnet", build_alexnet(random_weights=False), "raw").model
                twin.load_weights(path)
                params = alexnet_weights(twin)
    except WeightsError:
        raise
    except Exception as e:
        raise WeightsError(f"Cannot load AlexNet weights from '{path}': "
                           f"{type(e).__name__}: {e}") from e
    set_alexnet_weights(model, params, source=path)


def load_alexnet(weights="imagenet", seed=0, caffenet=False, mean="caffe"):
    """AlexNet (or CaffeNet order) as a `Classifier` on RGB 0-255 images of 227x227.

    Args:
      weights: "imagenet" (bvlc_alexnet.npy downloaded into Keras's cache, checked by
        SHA-256; a `WeightsError` offline), "random" (Keras initialisation seeded by
        `seed`), or a path to a .npy (bvlc_alexnet format), .weights.h5 or .keras file.
      seed: seed of random weights.
      caffenet: pool before LRN in blocks 1 and 2 (CaffeNet / "caffe-ref").
      mean: preprocessing mean, see `alexnet_preprocessing`.
    """
    name = "caffenet" if caffenet else "alexnet"
    spec = parse_weights(weights, seed)
    npy = _download_imagenet(caffenet) if spec.kind == "imagenet" else None
    random_init(spec.seed)
    model = build_alexnet(caffenet=caffenet, random_weights=spec.kind == "random")
    if spec.kind == "file":
        ext = spec.path.lower()
        if ext.endswith(".npy"):
            npy = spec.path
        elif ext.endswith((".keras", ".h5")):
            _load_keras_weights(model, spec.path)
        else:
            raise WeightsError(f"Cannot load AlexNet weights from '{spec.path}': use a .npy "
                               f"(bvlc_alexnet format), .weights.h5 or .keras file.")
    if npy is not None:
        set_alexnet_weights(model, read_alexnet_npy(npy), source=npy)
    return Classifier(name, model, alexnet_preprocessing(mean), aliases=ALEXNET_ALIASES,
                      labels=imagenet_labels(), weights=spec)
