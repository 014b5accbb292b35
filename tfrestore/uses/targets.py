"""Targets of activation maximisation, parsed from `--target` strings.

    logit:INDEX              a class score (pre-softmax logit) by index
    class:LABEL              the same by label (any comma-separated synonym of the labels
                             file, case-insensitive, '_' for ' ': class:flamingo)
    channel:LAYER:INDEX      the spatial mean of one channel of a layer
    unit:LAYER:INDEX[:Y:X]   one unit (default the centre of the map)

Each target becomes a selection tensor S of the layer's shape: the activation is <S, phi(x)>.
Targets of one batch may read different layers (`SelectionTerm` per layer).
"""
import re
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from tfrestore.inversion.objectives import Term

__all__ = ["Target", "parse_target", "parse_targets", "logits_layer", "class_index",
           "SelectionTerm", "selection_terms"]


@dataclass
class Target:
    spec: str                 # as given
    kind: str                 # logit | channel | unit
    layer: str
    index: int
    position: tuple = None    # (y, x) for units
    class_index: int = None   # the class whose probability is reported (logit targets)
    name: str = ""            # file stem, e.g. class_flamingo

    def selection(self, shape):
        """[*shape] float32 weights S with activation = sum(S * phi)."""
        s = np.zeros(shape, np.float32)
        if len(shape) == 1:
            s[self.index] = 1.0
        elif self.position is not None:
            s[self.position[0], self.position[1], self.index] = 1.0
        else:
            s[..., self.index] = 1.0 / (shape[0] * shape[1])
        return s


def logits_layer(classifier):
    """The pre-softmax class scores: the input of a final softmax, else the last layer."""
    model = classifier.model
    last = model.layers[-1]
    act = getattr(last, "activation", None)
    is_softmax = isinstance(last, keras.layers.Softmax) or (
        isinstance(last, keras.layers.Activation) and
        getattr(act, "__name__", str(act)) == "softmax")
    if is_softmax:
        prev = last.input
        for name in classifier.layer_names:
            if classifier.tensor(name) is prev:
                return name
        for l in model.layers:
            if l.output is prev:
                return l.name
    return classifier.resolve(last.name) and last.name


def _norm(text):
    return re.sub(r"[\s_]+", " ", text.strip().lower())


def class_index(classifier, label):
    """Index of the class named `label` (exact synonym match first, then a unique prefix)."""
    if not classifier.labels:
        raise ValueError(f"{classifier.name} has no labels: use logit:INDEX or --labels=FILE.")
    want = _norm(label)
    syn = [[_norm(s) for s in l.split(",")] for l in classifier.labels]
    exact = [i for i, names in enumerate(syn) if want in names]
    if exact:
        return exact[0]
    part = [i for i, names in enumerate(syn) if any(n.startswith(want) for n in names)]
    if len(part) == 1:
        return part[0]
    if part:
        raise ValueError(f"class:{label} is ambiguous: "
                         f"{', '.join(classifier.labels[i] for i in part[:6])}; be more "
                         f"specific or use logit:INDEX.")
    raise ValueError(f"class:{label}: no such label in {classifier.name}'s labels (e.g. "
                     f"'{classifier.labels[min(len(classifier.labels) - 1, 130)]}').")


def _stem(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80]


def _int(text, what, spec):
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--target={spec}: {what} '{text}' is not an integer.") from None


def parse_target(classifier, spec):
    """One `Target` from its string (ValueError naming the expected forms)."""
    forms = "logit:INDEX, class:LABEL, channel:LAYER:INDEX or unit:LAYER:INDEX[:Y:X]"
    kind, _, rest = spec.strip().partition(":")
    if kind in ("logit", "class"):
        layer = logits_layer(classifier)
        n = classifier.output_shape(layer)[-1]
        if kind == "logit":
            i = _int(rest, "index", spec)
            name = f"logit_{i}"
        else:
            i = class_index(classifier, rest)
            name = "class_" + _stem(_norm(classifier.labels[i].split(",")[0]))
        if not 0 <= i < n:
            raise ValueError(f"--target={spec}: index {i} outside the {n} outputs of {layer}.")
        return Target(spec, "logit", layer, i, None, i, name)
    if kind in ("channel", "unit"):
        parts = rest.split(":")
        if kind == "channel" and len(parts) != 2 or kind == "unit" and len(parts) not in (2, 4):
            raise ValueError(f"--target={spec}: expected {forms}.")
        layer = parts[0]
        classifier.resolve(layer)  # UnknownLayerError lists the valid names
        shape = classifier.output_shape(layer)
        i = _int(parts[1], "channel", spec)
        if not 0 <= i < shape[-1]:
            raise ValueError(f"--target={spec}: channel {i} outside the {shape[-1]} channels "
                             f"of {layer}.")
        pos = None
        if kind == "unit":
            if len(shape) != 3:
                raise ValueError(f"--target={spec}: {layer} has no spatial map; use "
                                 f"channel:{layer}:{i}.")
            pos = (shape[0] // 2, shape[1] // 2) if len(parts) == 2 else (
                _int(parts[2], "y", spec), _int(parts[3], "x", spec))
            if not (0 <= pos[0] < shape[0] and 0 <= pos[1] < shape[1]):
                raise ValueError(f"--target={spec}: position {pos} outside the "
                                 f"{shape[0]}x{shape[1]} map of {layer}.")
        name = f"{kind}_{_stem(layer)}_{i}" + (f"_{pos[0]}_{pos[1]}" if kind == "unit" else "")
        return Target(spec, kind, layer, i, pos, None, name)
    raise ValueError(f"--target={spec}: expected {forms}.")


_LIST = re.compile(r",(?=\s*(?:logit|class|channel|unit):)")


def parse_targets(classifier, specs):
    """Targets of a batch from strings (each may be a comma list); unique file names."""
    out, seen = [], {}
    for s in specs:
        # Split at commas followed by a target kind (labels themselves contain commas).
        for part in (p for p in _LIST.split(s) if p.strip()):
            t = parse_target(classifier, part)
            seen[t.name] = seen.get(t.name, 0) + 1
            if seen[t.name] > 1:
                t.name = f"{t.name}_{seen[t.name]}"
            out.append(t)
    if not out:
        raise ValueError("--target: give at least one target, e.g. class:flamingo.")
    return out


class SelectionTerm(Term):
    """-<S_b, phi_b(x)> per example b: the targets of a batch that read layer `at`
    (S_b = 0 for examples whose target is elsewhere)."""

    def __init__(self, at, selections, weight=1.0, name=None):
        super().__init__(name or f"activation:{at}", weight, at)
        self.selections = tf.constant(np.asarray(selections, np.float32))

    def activation(self, x):
        return tf.reduce_sum(x * self.selections, axis=list(range(1, x.shape.rank)))

    def __call__(self, x):
        return -self.activation(x)


def selection_terms(classifier, targets, weight=1.0):
    """One `SelectionTerm` per layer read by `targets` (one target per batch example)."""
    layers = list(dict.fromkeys(t.layer for t in targets))
    terms = []
    for layer in layers:
        shape = classifier.output_shape(layer)
        sel = np.stack([t.selection(shape) if t.layer == layer else
                        np.zeros(shape, np.float32) for t in targets])
        terms.append(SelectionTerm(layer, sel, weight))
    return terms
