"""The one classifier interface every network in tfrestore is seen through.

A `Classifier` wraps a functional Keras model whose fused activations have been
split off into layers of their own, so that both the pre-activation ("lin") and the
post-activation output of every layer can be addressed by name:

    clf.resolve("conv3_3/lin")   # thesis alias -> Keras layer "block3_conv3"
    clf.resolve("block3_conv3")  # the layer's own output = its ReLU output
    clf.feature_model(["conv1_1/relu", "pool5"])  # RGB 0-255 -> features, cut at pool5
"""
import difflib
import os

import keras
import numpy as np

from tfrestore.classifiers.preprocessing import make_preprocessing

__all__ = ["Classifier", "UnknownLayerError", "split_activations", "ACT_SEP"]

# Keras forbids "/" in layer names; the activation split off layer "X" is called "X__relu".
ACT_SEP = "__"


class UnknownLayerError(ValueError):
    """A layer name that the classifier does not have (message lists the valid ones)."""


def _activation_name(layer):
    act = getattr(layer, "activation", None)
    if act is None:
        return None
    name = getattr(act, "__name__", str(act))
    return None if name == "linear" else name


def split_activations(model):
    """Clone `model` with every fused activation moved into its own layer.

    Layer `X` with activation `a` becomes `X` (linear) followed by an `Activation`
    layer called `X__a`. Weights are copied; outputs are identical.
    """
    if isinstance(model, keras.Sequential):
        # Re-apply the layers one by one so that each stays addressable (calling the
        # Sequential itself would nest it as a single layer).
        inp = keras.Input(model.input_shape[1:])
        x = inp
        for layer in model.layers:
            x = layer(x)
        model = keras.Model(inp, x)
    fused = {l.name: _activation_name(l) for l in model.layers if _activation_name(l)}
    if not fused:
        return model

    def clone_fn(layer):
        cfg = layer.get_config()
        if layer.name in fused:
            cfg["activation"] = "linear"
        return layer.__class__.from_config(cfg)

    def call_fn(layer, *args, **kwargs):
        out = layer(*args, **kwargs)
        act = fused.get(layer.name)
        if act:
            out = keras.layers.Activation(act, name=f"{layer.name}{ACT_SEP}{act}")(out)
        return out

    clone = keras.models.clone_model(model, clone_function=clone_fn, call_function=call_fn)
    for layer in model.layers:
        if layer.weights:
            clone.get_layer(layer.name).set_weights(layer.get_weights())
    return clone


class Classifier:
    """A classifier to invert: split Keras model + preprocessing + layer addressing.

    Args:
      name: short name ("vgg16", "alexnet", a file name, ...).
      model: functional Keras model on *network input* (already preprocessed).
        Fused activations are split automatically.
      preprocessing: a `Preprocessing` layer or preset name (RGB 0-255 -> network input).
      aliases: extra names (e.g. thesis names "conv1_1" -> "block1_conv1").
      labels: class labels, index-aligned with the model's output.
      weights: a description of where the weights came from (recorded with outputs).
    """

    def __init__(self, name, model, preprocessing, aliases=None, labels=None,
                 weights="unknown"):
        self.name = name
        self.model = split_activations(model)
        self.preprocessing = make_preprocessing(preprocessing)
        self.labels = list(labels) if labels is not None else None
        self.weights = weights
        self._points = self._addressable_points()
        self.aliases = dict(aliases or {})
        for alias, target in self.aliases.items():
            self._lookup(target)  # a broken alias table is a bug: fail at construction

    # ------------------------------------------------------------------ addressing
    def _addressable_points(self):
        """Ordered {canonical name: keras layer name}."""
        points = {}
        for layer in self.model.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            if ACT_SEP in layer.name:
                base, act = layer.name.rsplit(ACT_SEP, 1)
                points[f"{base}/{act}"] = layer.name
                points[base] = layer.name          # the original layer's output
            else:
                points[layer.name] = layer.name
        # "<X>/lin" for every layer whose activation was split off.
        for canonical in list(points):
            if "/" in canonical:
                base = canonical.split("/")[0]
                points[f"{base}/lin"] = base
        return points

    @property
    def input_shape(self):
        """(H, W, C) of the network input."""
        return tuple(self.model.input_shape[1:])

    @property
    def input_size(self):
        return self.input_shape[:2]

    @property
    def layer_names(self):
        """All addressable names in network order (pre-activation before activation)."""
        order = {l.name: i for i, l in enumerate(self.model.layers)}
        return sorted(self._points, key=lambda n: (order[self._points[n]], n.endswith("/lin") is False,
                                                   "/" not in n))

    def _lookup(self, name):
        if name in self._points:
            return self._points[name]
        if "/" in name:
            base, suffix = name.split("/", 1)
            if base in self.aliases:
                target = self.aliases[base]
                return self._lookup(f"{target.split('/')[0]}/{suffix}")
        if name in self.aliases:
            return self._lookup(self.aliases[name])
        valid = self.layer_names + sorted(self.aliases)
        close = difflib.get_close_matches(name, valid, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownLayerError(
            f"Classifier '{self.name}' has no layer '{name}'.{hint} Valid layers: "
            f"{', '.join(self.layer_names)}. Aliases: "
            f"{', '.join(f'{a}->{t}' for a, t in self.aliases.items()) or 'none'}.")

    def resolve(self, name):
        """Keras layer name inside `self.model` for an addressable name or alias."""
        return self._lookup(name)

    def tensor(self, name):
        """Symbolic output tensor of an addressable point ("input" is the network input)."""
        if name == "input":
            return self.model.input
        return self.model.get_layer(self.resolve(name)).output

    def output_shape(self, name):
        return tuple(self.tensor(name).shape[1:])

    # ------------------------------------------------------------------ sub-models
    def submodel(self, to_layer, from_layer="input"):
        """Keras model from `from_layer`'s output (or the network input) to `to_layer`."""
        return keras.Model(self.tensor(from_layer), self.tensor(to_layer),
                           name=f"{self.name}_{from_layer}_to_{to_layer}".replace("/", "_"))

    def feature_model(self, layers, rgb_input=True):
        """Model mapping a batch (RGB 0-255 if `rgb_input`) to a list of layer outputs.

        Only the part of the network up to the deepest requested layer is kept.
        """
        single = isinstance(layers, str)
        layers = [layers] if single else list(layers)
        outputs = [self.tensor(l) for l in layers]
        net = keras.Model(self.model.input, outputs[0] if single else outputs)
        if not rgb_input:
            return net
        inp = keras.Input(self.input_shape, name="rgb")
        return keras.Model(inp, net(self.preprocessing(inp)), name=f"{self.name}_features")

    def features(self, images, layers, batch_size=16):
        """{layer: [N, ...] float32} of RGB 0-255 `images`, computed in batches on the
        network cut at the deepest layer (the one batched feature extraction)."""
        layers = [layers] if isinstance(layers, str) else list(layers)
        model = self.feature_model(layers)
        out = {l: [] for l in layers}
        images = np.asarray(images, np.float32)
        for i in range(0, len(images), batch_size):
            feats = model(images[i:i + batch_size], training=False)
            feats = feats if isinstance(feats, (list, tuple)) else [feats]
            for l, f in zip(layers, feats):
                out[l].append(np.asarray(f, np.float32))
        return {l: np.concatenate(v, 0) for l, v in out.items()}

    # ------------------------------------------------------------------ images
    def preprocess(self, rgb):
        return self.preprocessing(rgb)

    def deprocess(self, x):
        return self.preprocessing.invert(x)

    def predict_proba(self, rgb, batch_size=32):
        """Class scores (the model's final output) for RGB 0-255 images."""
        from tfrestore.data import check_rgb_batch
        rgb = check_rgb_batch(rgb, self.input_size)
        out = []
        for i in range(0, len(rgb), batch_size):
            out.append(np.asarray(self.model(self.preprocess(rgb[i:i + batch_size]),
                                             training=False)))
        return np.concatenate(out, 0)

    def top_k(self, rgb, k=5):
        """[(index, label, score), ...] per image; 1 <= k <= the number of classes."""
        scores = self.predict_proba(rgb)
        scores = scores.reshape(len(scores), -1)
        if isinstance(k, bool) or int(k) != k or not 1 <= k <= scores.shape[1]:
            raise ValueError(f"top_k={k!r}: must be between 1 and the {scores.shape[1]} "
                             f"outputs of {self.name}.")
        result = []
        for row in scores:
            idx = np.argsort(-row)[:k]
            result.append([(int(i), self.label(int(i)), float(row[i])) for i in idx])
        return result

    def label(self, index):
        if self.labels is None or index >= len(self.labels):
            return str(index)
        return self.labels[index]

    def describe(self):
        """Settings dict recorded with every output (the weights file by a name that does
        not depend on where the package or the data lie, so records compare across clones)."""
        weights = str(self.weights)
        if os.path.isabs(weights):
            weights = os.path.basename(weights)
        return {"classifier": self.name, "weights": weights,
                "input_shape": list(self.input_shape),
                "preprocessing": self.preprocessing.get_config()}

    def __repr__(self):
        return (f"Classifier({self.name!r}, input={self.input_shape}, "
                f"{len(self._points)} addressable points, weights={str(self.weights)!r})")
