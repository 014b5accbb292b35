"""A stack of inverse modules, one per block of a classifier, from a layer back to the image.

Blocks. A classifier is cut into blocks at a list of layers ``L1, ..., Lk`` (shallow to
deep): block i maps the output of ``L(i-1)`` to the output of ``Li`` (``L0`` = "input",
the *preprocessed* network input). The stack holds one `InverseModule` per block; module i
reconstructs ``L(i-1)`` from ``Li``. Chaining modules k..1 inverts ``Lk`` back to the
network input, which the classifier's own preprocessing layer turns into RGB 0-255.

Why the network input and not RGB 0-255 as the image-level target: it is what the
classifier sees, its scale is comparable to feature maps (e.g. [-1, 1] for MobileNetV2),
and the preprocessing is inverted exactly by a fixed layer inside the stack.

Cut points are given by the user, or found by `default_blocks`: for every spatial
resolution, the last layer at that resolution that every path from the input to the
output passes through (a cut vertex of the layer graph), so that its output alone
determines everything after it -- what a module needs to be well defined.
"""
import keras
import numpy as np

from tfrestore.classifiers.preprocessing import Preprocessing
from tfrestore.inverters.modules import InverseModule

__all__ = ["InverterStack", "BlockError", "build_stack", "default_blocks", "cut_layers",
           "resolve_blocks", "warm_start"]


class BlockError(ValueError):
    """Block boundaries that cannot be inverted (the message says why and what to pass)."""


def _parents(layer):
    parents = []
    for node in getattr(layer, "_inbound_nodes", []):
        parents += [p.operation for p in node.parent_nodes]
    return parents


def cut_layers(model):
    """Names of the 4-D layers of a functional model that every input-output path crosses."""
    layers = list(model.layers)
    index = {id(l): i for i, l in enumerate(layers)}
    min_parent = [min((index[id(p)] for p in _parents(l) if id(p) in index), default=i)
                  for i, l in enumerate(layers)]
    cuts, suffix_min = [], len(layers)
    for i in range(len(layers) - 1, -1, -1):
        # No later layer reads from anything before layer i -> layer i is a cut.
        shape = layers[i].output.shape if hasattr(layers[i], "output") else None
        if suffix_min >= i and shape is not None and len(shape) == 4 \
                and not isinstance(layers[i], keras.layers.InputLayer):
            cuts.append(layers[i].name)
        suffix_min = min(suffix_min, min_parent[i])
    return cuts[::-1]


def _canonical(classifier, keras_name):
    """The addressable name of a Keras layer's output (prefer the plain layer name)."""
    for name in classifier.layer_names:
        if "/" not in name and classifier.resolve(name) == keras_name:
            return name
    return keras_name


def default_blocks(classifier):
    """Cut points at every spatial-resolution change: the last cut layer of each resolution.

    Padding layers that grow the map (e.g. 56 -> 57 before a strided conv) are skipped.
    Fully connected layers are not blocks (modules are convolutional).
    """
    model = classifier.model
    groups, last_h = [], None
    for name in cut_layers(model):
        h, w = model.get_layer(name).output.shape[1:3]
        if last_h is not None and h > last_h:
            continue
        if last_h is None or h < last_h:
            groups.append(name)
        else:
            groups[-1] = name
        last_h = h
    h_in = classifier.input_shape[0]
    groups = [g for g in groups if model.get_layer(g).output.shape[1] < h_in]
    if not groups:
        raise BlockError(f"Classifier '{classifier.name}' has no convolutional block to "
                         f"invert; pass blocks explicitly (--blocks=L1,L2,...).")
    return [_canonical(classifier, g) for g in groups]


def resolve_blocks(classifier, blocks=None, up_to=None):
    """Validate cut points: names known, 4-D, in network order, not after `up_to`.

    Args:
      blocks: list (or comma-separated string) of layer names, shallow to deep; None for
        `default_blocks`.
      up_to: keep only the cut points up to this layer, which is appended if missing.
    Returns:
      list of names, shallow to deep (without "input").
    """
    if isinstance(blocks, str):
        blocks = [b.strip() for b in blocks.split(",") if b.strip()]
    if not blocks:
        blocks = default_blocks(classifier)
        if up_to is not None:
            keep = [b for b in blocks if _order(classifier, b) < _order(classifier, up_to)]
            blocks = keep + [up_to]
    elif up_to is not None and up_to not in blocks:
        blocks = [b for b in blocks if _order(classifier, b) < _order(classifier, up_to)]
        blocks = blocks + [up_to]
    elif up_to is not None:
        blocks = blocks[:blocks.index(up_to) + 1]
    orders = []
    for b in blocks:
        shape = classifier.output_shape(b)  # raises UnknownLayerError with the valid names
        if len(shape) != 3:
            raise BlockError(f"Layer '{b}' has output shape {shape}; inverse modules are "
                             f"convolutional and need a [H, W, C] feature map.")
        orders.append(_order(classifier, b))
    if any(b <= a for a, b in zip(orders, orders[1:])):
        raise BlockError(f"Blocks {blocks} are not in network order (shallow to deep); "
                         f"sort them as they appear in classifier.layer_names.")
    return list(blocks)


def _order(classifier, name):
    names = [l.name for l in classifier.model.layers]
    pos = names.index(classifier.resolve(name))
    # "X/lin" comes before "X" (= the activation layer that follows X).
    return 2 * pos + (0 if classifier.resolve(name) == name or name.endswith("/lin") else 1)


@keras.saving.register_keras_serializable(package="tfrestore")
class InverterStack(keras.Model):
    """Inverse modules chained from the deepest cut point back to the image.

    Args:
      levels: ["input", L1, ..., Lk] -- names of the cut points, shallow to deep.
      shapes: the (H, W, C) output shape of each level (network input first).
      kind: module design, "deconv" or "upsample" (one for all, or a list per module).
      hidden: hidden width per module (int, list or None for the default).
      preprocessing: the classifier's `Preprocessing` (its `invert` gives RGB 0-255).
      classifier: the classifier's name (recorded for users and `bin/invert.py`).
      weights: the classifier's weights as its `describe()` names them (e.g.
        "random(seed=0)", "bvlc_alexnet.npy"): features of other weights are another
        function, and `check_inverter` refuses them. "" (inverters saved before it was
        recorded): not checked.
      mode: the training mode (set by the trainer); joint and end_to_end stacks are
        trained from the deepest level only, and `check_inverter` refuses other levels.
    Calling the stack on features of the deepest level returns RGB 0-255 images.
    """

    def __init__(self, levels, shapes, kind="deconv", hidden=None, preprocessing=None,
                 classifier="", mode="", weights="", **kwargs):
        super().__init__(**kwargs)
        self.mode = str(mode)
        if len(levels) < 2 or len(levels) != len(shapes) or levels[0] != "input":
            raise BlockError(f"levels must be ['input', L1, ...] with one shape each; got "
                             f"levels={levels}, {len(shapes)} shapes.")
        self.levels = [str(l) for l in levels]
        self.shapes = [tuple(int(d) for d in s) for s in shapes]
        n = len(levels) - 1
        kinds = [kind] * n if isinstance(kind, str) else list(kind)
        hiddens = [hidden] * n if hidden is None or np.isscalar(hidden) else list(hidden)
        if any(h is not None and h < 1 for h in hiddens):
            raise BlockError(f"hidden={hidden}: hidden channels must be >= 1 (or unset).")
        if len(kinds) != n or len(hiddens) != n:
            raise BlockError(f"{n} modules but {len(kinds)} kinds and {len(hiddens)} widths.")
        self.classifier_name = str(classifier)
        self.classifier_weights = str(weights)
        if isinstance(preprocessing, dict):
            preprocessing = keras.saving.deserialize_keras_object(preprocessing)
        self.prep = preprocessing if preprocessing is not None else Preprocessing(
            name="preprocessing")
        self.inverse_modules = []
        for i in range(n):
            m = InverseModule(self.shapes[i], kind=kinds[i], hidden=hiddens[i],
                              source=self.levels[i + 1], target=self.levels[i],
                              name=f"invert_{i + 1}")
            m.build((None,) + self.shapes[i + 1])
            self.inverse_modules.append(m)
        self.kinds = kinds
        # Build the model itself now: all shapes are known, and load_model then only
        # restores the weights.
        self.build((None,) + self.shapes[-1])

    def build(self, input_shape):
        self.built = True

    # ------------------------------------------------------------------ levels
    @property
    def depth(self):
        """Number of modules (= deepest level index)."""
        return len(self.inverse_modules)

    def level_index(self, layer):
        """Index of a cut point in `levels` ("input" is 0)."""
        if layer not in self.levels:
            raise BlockError(f"This inverter has no module starting at '{layer}'; it "
                             f"inverts from {', '.join(self.levels[1:])}.")
        return self.levels.index(layer)

    def invert_levels(self, features, source=None):
        """Chain modules from `source` (index or name, default deepest) to the input.

        Returns the list of reconstructions at levels source-1, ..., 0 (network space).
        """
        s = self.depth if source is None else (
            source if isinstance(source, int) else self.level_index(source))
        outs, x = [], features
        for i in range(s, 0, -1):
            x = self.inverse_modules[i - 1](x)
            outs.append(x)
        return outs

    def to_rgb(self, x):
        """Network input -> RGB 0-255 (unclipped)."""
        return self.prep.invert(x)

    def call(self, features, source=None):
        return self.to_rgb(self.invert_levels(features, source)[-1])

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self.shapes[0]

    def get_config(self):
        return {"name": self.name, "levels": self.levels,
                "shapes": [list(s) for s in self.shapes], "kind": self.kinds,
                "hidden": [m.hidden for m in self.inverse_modules],
                "preprocessing": keras.saving.serialize_keras_object(self.prep),
                "classifier": self.classifier_name, "mode": self.mode,
                "weights": self.classifier_weights}

    def describe(self):
        """Settings dict recorded with outputs."""
        return {"classifier": self.classifier_name, "weights": self.classifier_weights,
                "mode": self.mode, "levels": self.levels,
                "shapes": [list(s) for s in self.shapes], "kinds": self.kinds,
                "hidden": [m.hidden for m in self.inverse_modules],
                "parameters": int(sum(np.prod(w.shape) for w in self.weights))}


def build_stack(classifier, layer=None, blocks=None, kind="deconv", hidden=None, seed=0):
    """An untrained `InverterStack` inverting `classifier` from `layer` back to the image.

    Args:
      classifier: a `tfrestore.classifiers.Classifier`.
      layer: deepest layer to invert from (default: the last of `blocks`).
      blocks: cut points (list or "L1,L2,..."), default `default_blocks(classifier)`.
      kind: "deconv" or "upsample" (or a list, one per module).
      hidden: hidden width(s); None for `default_hidden`.
      seed: seeds the weight initialisation.
    """
    keras.utils.set_random_seed(int(seed))
    names = resolve_blocks(classifier, blocks, up_to=layer)
    levels = ["input"] + names
    shapes = [classifier.input_shape] + [classifier.output_shape(n) for n in names]
    prep = Preprocessing.from_config(classifier.preprocessing.get_config())
    return InverterStack(levels, shapes, kind=kind, hidden=hidden, preprocessing=prep,
                         classifier=classifier.name,
                         weights=classifier.describe()["weights"],
                         name=f"inverter_{classifier.name}".replace(".", "_"))


def other_weights(a, b):
    """Whether two recorded classifier weights differ ("" = not recorded: never differs)."""
    return bool(a) and bool(b) and a != b


def warm_start(stack, init, source="--init"):
    """Copy the weights of the trained stack `init` into `stack` (returns `stack`).

    Used to fine-tune converged solo/stacked modules jointly or end to end: the chain
    starts where the solo modules ended instead of from random weights. Both stacks must
    invert the same levels of the same classifier, with the same module kinds and widths.
    """
    mine, theirs = stack.describe(), init.describe()
    differ = [k for k in ("classifier", "levels", "shapes", "kinds", "hidden")
              if mine[k] != theirs[k]]
    if other_weights(mine["weights"], theirs["weights"]):
        differ.append("weights")
    if differ:
        detail = "; ".join(f"{k} {theirs[k]} there, {mine[k]} here" for k in differ)
        raise BlockError(f"{source}: the inverter does not match this run's stack ({detail}). "
                         f"Pass the classifier's --weights and the --blocks, --kind and "
                         f"--hidden it was trained with.")
    stack.set_weights(init.get_weights())
    return stack
