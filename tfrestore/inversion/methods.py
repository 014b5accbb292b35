"""Reconstruction methods by name and configuration, for comparisons and searches.

A method is described by a small dict (one entry of a comparison config, JSON):

    {"preset": "mv2016",                       # handcrafted settings to start from
     "overrides": {"tv_weight": 0, "prior_start": 0.3},   # any InversionSettings field
     "priors": {"*": ["checkpoints/foe_8x8x3_512.keras@image:1e-5"],
                "expanded_conv_5_add": ["...@image:1e-5", "fmap.keras@expanded_conv_3_add:1e-4"]},
     "inverter": {"expanded_conv_3_add": "checkpoints/inverter_....keras"},
     "hybrid": false}

`priors` maps the inverted layer (or "*" for any layer without its own entry) to prior
specs `PATH@AT:WEIGHT` (see `learned.py`). With `inverter` and no `hybrid` the method is
the inverting network alone; with `hybrid` its output starts the optimisation. Relative
paths are relative to the current directory (the repository root), like path flags.
"""
import time
from dataclasses import dataclass, field


from tfrestore.inversion.learned import prior_terms
from tfrestore.inversion.presets import get_settings

__all__ = ["Method", "methods_from_config", "MethodUnavailable", "reconstruct", "KINDS"]


class MethodUnavailable(ValueError):
    """The method has nothing for this layer (e.g. no inverter trained for it)."""


@dataclass
class Method:
    name: str
    preset: str = "mv2016"
    overrides: dict = field(default_factory=dict)
    priors: dict = field(default_factory=dict)
    inverter: dict = field(default_factory=dict)
    hybrid: bool = False
    hybrid_lr_scale: float = 0.1

    @property
    def uses_network(self):
        return bool(self.inverter)

    def prior_specs(self, layer):
        return list(self.priors.get(layer, self.priors.get("*", [])))

    def steps_for(self, steps):
        """The method's own "steps" override wins over the study's --steps: a fixed-budget
        method (the fast preset at 350) keeps its budget in a 3500-step study."""
        return int(self.overrides["steps"]) if "steps" in self.overrides else steps

    def settings(self, classifier, layer, steps=None, seed=0):
        return get_settings(self.preset, classifier, layer,
                            **dict(self.overrides, steps=self.steps_for(steps), seed=seed))

    def unavailable_at(self, layer):
        """Why the method has nothing for `layer` (no prior, no inverter), or None. Such a
        cell is skipped: run anyway it would be the baseline under another name."""
        if self.priors and layer not in self.priors and "*" not in self.priors:
            return f"Method '{self.name}' has no prior for '{layer}'."
        if self.uses_network and layer not in self.inverter:
            return f"Method '{self.name}' has no inverter for '{layer}'."
        return None

    def check_inverters(self, classifier, layers):
        """Raise `InverterMismatchError` now, before any cell runs, if an inverter of this
        method at one of `layers` was trained for another classifier, layer or weights."""
        from tfrestore.inverters import check_inverter, load_inverter
        for layer in layers:
            if self.uses_network and layer in self.inverter:
                check_inverter(load_inverter(self.inverter[layer]), classifier, layer)

    def reconstruct(self, classifier, layer, images, steps=None, seed=0, verbose=False,
                    **run_options):
        """(reconstructions [N, H, W, 3] RGB 0-255, seconds, record dict); `run_options`
        (checkpoint_dir, curve, curve_path, ...) go to the optimisation (a hybrid's too;
        nothing to a network's forward pass)."""
        why = self.unavailable_at(layer)
        if why:
            raise MethodUnavailable(why)
        steps = self.steps_for(steps)
        settings = self.settings(classifier, layer, steps, seed)
        terms = prior_terms(classifier, self.prior_specs(layer))
        record = {"method": self.name, "settings": settings.as_dict(),
                  "priors": [str(s) for s in self.prior_specs(layer)]}
        kind = "optimisation"
        inverter = None
        if self.uses_network:
            kind, inverter = ("hybrid" if self.hybrid else "network"), self.inverter[layer]
            record["inverter"] = inverter
        result = reconstruct(classifier, images, settings, kind, inverter=inverter,
                             extra_terms=terms if kind != "network" else (),
                             hybrid_lr_scale=self.hybrid_lr_scale,
                             steps=steps, verbose=verbose,
                             **(run_options if kind != "network" else {}))
        if kind != "network":
            record.update(steps_run=result.steps, converged=result.converged,
                          convergence=result.convergence)
            if getattr(result, "curve", None):
                record["curve"] = result.curve
        return result.reconstructions, result.seconds, record


KINDS = ("optimisation", "network", "hybrid")


def reconstruct(classifier, images, settings, kind="optimisation", inverter=None,
                extra_terms=(), hybrid_lr_scale=0.1, steps=None, **run_options):
    """The one dispatcher of reconstruction methods -> `InversionResult` (with `.inverter`
    describing the network for the network and hybrid methods).

    Args:
      kind: "optimisation" (pre-image optimisation of `settings`), "network" (a trained
        inverter's forward pass) or "hybrid" (its output starts the optimisation, at
        `hybrid_lr_scale` of the learning rates).
      inverter: path of a trained inverter (.keras) for network/hybrid.
      run_options: passed to `invert` (verbose, log_every, summary_dir, checkpoint_dir, ...).
    """
    from tfrestore.inversion.optimize import InversionResult, invert
    if kind not in KINDS:
        raise ValueError(f"Unknown method '{kind}' (available: {', '.join(KINDS)}).")
    if kind == "optimisation":
        start = time.perf_counter()
        result = invert(classifier, images, settings, extra_terms=extra_terms, steps=steps,
                        **run_options)
        result.seconds = time.perf_counter() - start
        return result
    if not inverter:
        raise ValueError(f"--method={kind} needs --inverter=PATH.keras (train one with "
                         f"bin/train_inverter.py).")
    from tfrestore.inverters import (load_inverter, reconstruct_hybrid,
                                     reconstruct_with_network)
    model = load_inverter(inverter)
    if kind == "network":
        if extra_terms:
            raise ValueError("--prior has no effect with --method=network; use "
                             "--method=hybrid.")
        net = reconstruct_with_network(model, classifier, settings.layer, images)
        result = InversionResult(net.reconstructions, settings, 0, net.seconds)
    else:
        net = reconstruct_hybrid(model, classifier, settings.layer, images, settings,
                                 extra_terms=extra_terms, lr_scale=hybrid_lr_scale,
                                 steps=steps, **run_options)
        result = net.optimisation
        result.seconds = net.seconds
        result.settings = settings.replace(lr_values=net.settings["optimisation"]["lr_values"])
    result.inverter = dict(net.settings, path=inverter)
    return result


def methods_from_config(config, overrides=None):
    """{name: dict} (the "methods" entry of a comparison config) -> [Method].

    `overrides` (the config's top-level "overrides") are settings every method starts from,
    e.g. the study's convergence criterion; a method's own overrides win."""
    known = set(Method.__dataclass_fields__) - {"name"}
    out = []
    for name, spec in config.items():
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"Method '{name}': unknown key(s) {sorted(unknown)}; "
                             f"valid: {sorted(known)}.")
        if overrides:
            spec = dict(spec, overrides=dict(overrides, **spec.get("overrides", {})))
        out.append(Method(name=name, **spec))
    return out
