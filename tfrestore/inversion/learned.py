"""Learned priors in pre-image optimisation: attach saved priors to the image or a layer.

A prior is given as ``PATH[@AT][:WEIGHT]`` (the `--prior` flag of bin/invert.py):

    checkpoints/foe_8x8x3_512.keras@image:1e-4
    checkpoints/mnv2_expanded_conv_3_add.keras@expanded_conv_3_add:1e-5

`AT` is "image" (the reconstruction, RGB 0-255; the default) or any classifier layer
(the prior then sees that layer's activations from the same forward pass, and its gradient
flows back through the network to the image). The prior's energy is a sum over patch
positions; `WEIGHT` multiplies it in the objective beside the feature loss (weight C).
"""
import os
import re
from dataclasses import dataclass

from absl import logging

from tfrestore.inversion.objectives import IMAGE, PriorTerm

__all__ = ["PriorSpec", "parse_prior_spec", "prior_terms", "describe_specs"]

_SPEC = re.compile(r"^(?P<path>.+?)(?:@(?P<at>[^:@]+))?(?::(?P<weight>[-+0-9.eE]+))?$")


@dataclass
class PriorSpec:
    path: str
    at: str = IMAGE
    weight: float = 1.0

    def __str__(self):
        return f"{self.path}@{self.at}:{self.weight:g}"


def parse_prior_spec(text):
    """'PATH[@AT][:WEIGHT]' -> PriorSpec (raises ValueError naming the expected form)."""
    if isinstance(text, PriorSpec):
        return text
    m = _SPEC.match(text.strip())
    if not m or not m.group("path"):
        raise ValueError(f"Bad prior '{text}': expected PATH[@LAYER][:WEIGHT], e.g. "
                         f"checkpoints/foe_8x8x3_512.keras@image:1e-4.")
    try:
        weight = float(m.group("weight")) if m.group("weight") else 1.0
    except ValueError:
        raise ValueError(f"Bad prior weight in '{text}': expected a number after ':'.")
    if weight < 0:
        raise ValueError(f"Prior weight must be >= 0 in '{text}'.")
    return PriorSpec(m.group("path"), m.group("at") or IMAGE, weight)


def _check_attachment(prior, classifier, at):
    """The prior's channels must match what it is attached to; other metadata warns."""
    from tfrestore.priors import PriorMismatchError
    channels = 3 if at == IMAGE else classifier.output_shape(at)[-1]
    if prior.channels != channels:
        raise PriorMismatchError(
            f"Prior {prior!r} models {prior.channels} channels but '{at}' of "
            f"{classifier.name} has {channels}: attach it to the layer it was trained on.")
    trained_layer = prior.metadata.get("layer")
    if at != IMAGE and trained_layer and classifier.resolve(trained_layer) != \
            classifier.resolve(at):
        logging.warning("Prior trained on layer '%s' is attached to '%s'.", trained_layer, at)


def prior_terms(classifier, specs):
    """PriorTerms for `specs` (strings or PriorSpecs), loaded and checked."""
    from tfrestore.priors import load_prior
    terms, seen = [], {}
    for spec in specs:
        spec = parse_prior_spec(spec)
        if spec.at != IMAGE:
            classifier.resolve(spec.at)  # UnknownLayerError listing the valid names
        prior = load_prior(spec.path)
        _check_attachment(prior, classifier, spec.at)
        base = f"prior:{os.path.splitext(os.path.basename(spec.path))[0]}@{spec.at}"
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base}#{seen[base]}"
        term = PriorTerm(prior, at=spec.at, weight=spec.weight, name=name)
        term.path = os.path.abspath(spec.path)
        terms.append(term)
    return terms


def describe_specs(terms):
    from tfrestore.io import portable_path
    return [dict(t.describe(), path=portable_path(getattr(t, "path", None))) for t in terms]
