"""Settings of pre-image optimisation, and the presets of both M&V papers.

`get_settings(preset, classifier, layer, **overrides)` returns an `InversionSettings`
with every number filled in (REFERENCE section 2); any field can be overridden.

Layer-dependent fields:

=========== ============================ ================================================
preset      AlexNet / CaffeNet           VGG16 (thesis names)
=========== ============================ ================================================
mv2016 C    300 conv1..conv3, 100 conv4,  300 conv1_1..conv4_3, 100 pool4..conv5_1,
            20 conv5, 1 pool5 on          20 conv5_2..conv5_3, 1 pool5 on
mv2016 T    1 conv1, 2 lrn1..lrn2,        0 block1, 1 block2, 2 block3, 4 block4,
            4 pool2..conv5, 8 pool5 on    8 block5 and fc
mv2015 TV   1 conv1..conv2, 10 pool2..    by analogy: 1 blocks 1-2, 10 blocks 3-4,
            conv4, 100 conv5 on           100 block5 and fc
=========== ============================ ================================================

Other classifiers (documented heuristic): d = relative depth of the layer among the
layers with a spatial output (0 = first, 1 = last). C = 300 for d <= 0.7, 100 for
d <= 0.8, 20 below the last spatial layer, 1 for the last spatial layer and vector
layers; T = 1, 2, 4, 8 for d in [0, .25), [.25, .5), [.5, .75), [.75, 1] (8 for
vectors); 2015 lambda_TV = 1, 10, 100 for d < 1/3, < 2/3, beyond.
"""
import dataclasses
from dataclasses import dataclass, field

import math

__all__ = ["InversionSettings", "PRESETS", "get_settings", "layer_family_position",
           "image_mean", "IMAGENET_MEAN_RGB"]

PRESETS = ("mv2016", "mv2015", "fast")

# Mean Euclidean norm of mean-subtracted 227x227 training images (M&V 2015).
SIGMA_2015 = 2.7098e4


def effective_sigma(sigma, height, width, ref=227):
    """The sigma used for an H x W image: `sigma` itself, at every size.

    Keeping sigma (rather than rescaling it by sqrt(H W / 227^2) to keep ||u|| = 1)
    keeps the per-pixel scale of u, hence of the alpha-norm and TV terms and of the
    lambdas, equal to the paper's 227 x 227 setting; rescaling made the 6th-power
    alpha-norm (x (227/H)^6 per pixel) blow up momentum SGD on small images.
    """
    del height, width, ref
    return float(sigma)
IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)


def _f(default, help, factory=False):
    """A settings field with its flag help (flags are generated from these fields)."""
    if factory:
        return field(default_factory=default, metadata={"help": help})
    return field(default=default, metadata={"help": help})


# Settings added after runs were checkpointed, with their value that behaves as before them
# (`InversionSettings.resume_record`).
ADDED_LATER = {"prior_grid_maps": 1}


@dataclass
class InversionSettings:
    """Every number of one pre-image optimisation (recorded with its outputs).

    This is the one definition of the settings: `tfrestore.cli.define_settings_flags`
    generates a flag per field (default None = the preset's value) from it.
    """
    preset: str = _f("mv2016", "Named settings: " + ", ".join(("mv2016", "mv2015", "fast")))
    layer: str = _f("", "Layer to invert.")
    steps: int = _f(3500, "Optimisation steps ($TFRESTORE_MAX_STEPS caps them); schedules "
                    "scale with the run length.")
    seed: int = _f(0, "Seed of the noise start, the jitter and the learned-prior crops.")
    optimizer: str = _f("adam", "Any keras.optimizers name: adam, sgd (momentum), rmsprop, "
                        "nadam, adamw, ...")
    lr_schedule: str = _f("piecewise", "Learning-rate schedule over the run: piecewise "
                          "(lr_values at lr_boundaries), constant, cosine, warmup_cosine "
                          "(these two decay lr_values[0] to 1%).")
    lr_values: list = _f(lambda: [1066.67e-2, 1066.67 * 3e-3, 1066.67e-3],
                         "Learning rates (piecewise: one more than boundaries).", True)
    lr_boundaries: list = _f(lambda: [1000 / 3500, 2000 / 3500],
                             "Piecewise schedule boundaries as fractions of the run.", True)
    momentum: float = _f(0.9, "SGD momentum.")
    momentum_reset: bool = _f(True, "SGD: reset the optimizer state at every learning-rate "
                              "change (M&V 2015).")
    parameterization: str = _f("mv", "Image variable: mv (mean + sigma u, M&V), pixels, "
                               "fourier (decorrelated colour, 1/f-scaled Fourier basis), "
                               "laplacian (pyramid).")
    fourier_decay: float = _f(1.0, "fourier: coefficients scaled by 1/frequency^decay.")
    pyramid_levels: int = _f(4, "laplacian: number of pyramid levels.")
    pyramid_gain: float = _f(2.0, "laplacian: level k is scaled by gain^k.")
    feature_weight: float = _f(300.0, "C, weight of the normalised feature loss.")
    range_alpha: float = _f(6.0, "alpha of the range prior N_alpha (2016).")
    range_weight: float = _f(1.0, "Weight of N_alpha/(H W B^alpha); 0 disables.")
    bound: float = _f(80.0, "B, on the mean-subtracted 0-255 image.")
    bound_factor: float = _f(2.0, "B+ = bound_factor * B is projected on after every step; "
                             "0 = no projection.")
    tv_beta: float = _f(2.0, "beta of the TV prior.")
    tv_V: float = _f(80.0 / 6.5, "V: TV is computed on x / V.")
    tv_per_pixel: bool = _f(True, "Divide TV by H*W (2016).")
    tv_weight: float = _f(1.0, "Weight of TV; 0 disables.")
    alpha_norm: float = _f(6.0, "alpha of the 2015 alpha-norm prior.")
    alpha_weight: float = _f(0.0, "lambda_alpha of the 2015 alpha-norm prior; 0 disables.")
    jitter: int = _f(1, "T: max jitter translation in pixels.")
    jitter_off: float = _f(2750 / 3500, "Fraction of the run after which jitter stops.")
    scale_jitter: float = _f(0.0, "Random zoom by up to this fraction (e.g. 0.05) while "
                             "jitter is on; 0 = off.")
    sigma: float = _f(0.0, "sigma-scaling of the variable (2015); 0 = off.")
    init_std: float = _f(80.0 / 6.5, "Std of the Gaussian noise start (0-255 units).")
    image_mean: list = _f(lambda: list(IMAGENET_MEAN_RGB), "Dataset mean RGB the variable "
                          "is centred on.", True)
    prior_start: float = _f(0.0, "Fraction of the run with the feature loss alone before the "
                            "learned priors switch on (two-phase schedule).")
    prior_crop: float = _f(0.0, "Evaluate learned priors on a random crop of this fraction of "
                           "the map per step (a stochastic estimate); 0 = whole map.")
    prior_grid: int = _f(4, "Learned patch priors on the image: evaluate the energy on a "
                         "stride-s grid with a random offset per step, scaled by s^2 (an "
                         "unbiased estimate, about s^2 cheaper; priors/grid.py); 1 = exact.")
    prior_grid_maps: int = _f(1, "Learned patch priors on feature maps: the same strided-grid "
                              "estimate at this stride; 1 = exact (maps are smaller than the "
                              "image, but a 1024-expert prior on an early 112x112 map costs "
                              "more than the network).")
    converge_rtol: float = _f(0.0, "Stop once the mean objective changes by less than this "
                              "fraction between two windows (after the last lr drop); 0 = "
                              "run all steps (convergence is still measured and recorded).")
    converge_window: int = _f(50, "Window (steps) of the convergence criterion.")

    def replace(self, **overrides):
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"Unknown inversion setting(s) {sorted(unknown)}; valid: "
                             f"{[f.name for f in dataclasses.fields(self)]}.")
        return dataclasses.replace(self, **{k: v for k, v in overrides.items()
                                             if v is not None})

    def as_dict(self):
        return dataclasses.asdict(self)

    def resume_record(self):
        """The settings a checkpoint records and is resumed under: all of them, but a setting
        added after runs were checkpointed is left out at the value that behaves as before it
        existed, so those runs still resume (a run that changes it does not)."""
        return {k: v for k, v in self.as_dict().items()
                if not (k in ADDED_LATER and v == ADDED_LATER[k])}

    def validate(self):
        """Raise ValueError naming the setting (and its flag) for a value that cannot work."""
        def bad(name, why):
            raise ValueError(f"--{name}={getattr(self, name)!r}: {why}")
        if self.preset not in PRESETS:
            bad("preset", f"choose one of {list(PRESETS)}.")
        if not isinstance(self.steps, int) or self.steps < 1:
            bad("steps", "needs at least 1 optimisation step.")
        if not self.lr_values or not all(math.isfinite(float(v)) and float(v) > 0
                                         for v in self.lr_values):
            bad("lr_values", "learning rates must be finite and > 0.")
        if self.lr_schedule == "piecewise" and \
                len(self.lr_values) != len(self.lr_boundaries) + 1:
            bad("lr_values", f"a piecewise schedule needs one more value than the "
                f"{len(self.lr_boundaries)} --lr_boundaries.")
        if not all(0.0 <= float(b) <= 1.0 for b in self.lr_boundaries) or \
                list(self.lr_boundaries) != sorted(self.lr_boundaries):
            bad("lr_boundaries", "boundaries are increasing fractions of the run in [0, 1].")
        from tfrestore.engine import PARAMETERIZATIONS, SCHEDULES
        if self.lr_schedule not in SCHEDULES:
            bad("lr_schedule", f"choose one of {list(SCHEDULES)}.")
        if self.parameterization not in PARAMETERIZATIONS:
            bad("parameterization", f"choose one of {list(PARAMETERIZATIONS)}.")
        for name in ("feature_weight", "range_weight", "tv_weight", "alpha_weight", "bound",
                     "bound_factor", "tv_V", "sigma", "init_std", "momentum",
                     "converge_rtol", "scale_jitter", "fourier_decay", "pyramid_gain"):
            v = float(getattr(self, name))
            if not math.isfinite(v) or v < 0:
                bad(name, "must be a finite number >= 0.")
        for name in ("range_alpha", "tv_beta", "alpha_norm"):
            v = float(getattr(self, name))
            if not math.isfinite(v) or v <= 0:
                bad(name, "must be a finite number > 0.")
        if self.tv_V == 0:
            bad("tv_V", "must be > 0 (TV is computed on x / V).")
        if self.range_weight and not self.bound:
            bad("bound", "must be > 0 when the range prior is on.")
        if not isinstance(self.jitter, int) or self.jitter < 0:
            bad("jitter", "the jitter translation T is a whole number of pixels >= 0.")
        for name in ("jitter_off", "prior_start"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                bad(name, "is a fraction of the run in [0, 1].")
        for name in ("prior_grid", "prior_grid_maps"):
            stride = getattr(self, name)
            if not isinstance(stride, int) or stride < 1:
                bad(name, "is a grid stride, a whole number >= 1 (1 = exact).")
        if not 0.0 <= float(self.prior_crop) < 1.0:
            bad("prior_crop", "is a fraction of the map in [0, 1) (0 = the whole map).")
        if self.scale_jitter >= 1.0:
            bad("scale_jitter", "is a zoom fraction in [0, 1).")
        if self.converge_window < 1:
            bad("converge_window", "needs at least 1 step.")
        if self.pyramid_levels < 1:
            bad("pyramid_levels", "needs at least 1 level.")
        if len(self.image_mean) != 3:
            bad("image_mean", "is one value per RGB channel.")
        return self


def image_mean(classifier):
    """Dataset mean (RGB 0-255) the variable is centred on: the preprocessing's mean,
    or the ImageNet mean when the preprocessing subtracts none ("raw")."""
    mean = [float(m) for m in classifier.preprocessing.mean]
    return list(IMAGENET_MEAN_RGB) if not any(mean) else mean


_ALEXNET = ["conv1", "lrn1", "pool1", "conv2", "lrn2", "pool2", "conv3", "conv4", "conv5",
            "pool5", "fc6", "fc7", "fc8", "softmax", "prob"]


def _base(name):
    return name.split("/")[0]


def layer_family_position(classifier, layer):
    """("alexnet", base) | ("vgg16", thesis base) | ("other", relative depth or None)."""
    classifier.resolve(layer)  # UnknownLayerError with the valid names
    base = _base(layer)
    if classifier.name in ("alexnet", "caffenet") and base in _ALEXNET:
        return "alexnet", base
    if classifier.name == "vgg16":
        if base in classifier.aliases:
            return "vgg16", base
        reverse = {v.split("/")[0]: a for a, v in classifier.aliases.items()}
        if base in reverse:
            return "vgg16", reverse[base]
    import keras

    from tfrestore.classifiers.base import ACT_SEP
    spatial = []  # layers with a spatial output, a split-off activation counted with its layer
    for l in classifier.model.layers:
        base = l.name.split(ACT_SEP)[0]
        if (not isinstance(l, keras.layers.InputLayer) and len(l.output.shape) == 4
                and base not in spatial):
            spatial.append(base)
    target = classifier.resolve(layer).split(ACT_SEP)[0]
    if target not in spatial:
        return "other", None  # a vector (dense) layer
    return "other", spatial.index(target) / max(1, len(spatial) - 1)


def _vgg_block(base):
    if base.startswith("conv"):
        return int(base[4])
    if base.startswith("pool"):
        return int(base[4])
    return 6


def _mv2016_layer(family, pos):
    if family == "alexnet":
        order = _ALEXNET.index(pos)
        C = 300 if order <= _ALEXNET.index("conv3") else (
            100 if pos == "conv4" else 20 if pos == "conv5" else 1)
        T = 1 if pos == "conv1" else 2 if order <= _ALEXNET.index("lrn2") else (
            4 if order <= _ALEXNET.index("conv5") else 8)
        return C, T
    if family == "vgg16":
        block = _vgg_block(pos)
        if block <= 3 or pos.startswith("conv4"):
            C = 300
        elif pos in ("pool4", "conv5_1"):
            C = 100
        elif pos in ("conv5_2", "conv5_3"):
            C = 20
        else:
            C = 1
        T = {1: 0, 2: 1, 3: 2, 4: 4}.get(block, 8)
        return C, T
    if pos is None:
        return 1, 8
    C = 300 if pos <= 0.7 else 100 if pos <= 0.8 else 20 if pos < 1.0 else 1
    T = 1 if pos < 0.25 else 2 if pos < 0.5 else 4 if pos < 0.75 else 8
    return C, T


def _mv2015_tv(family, pos):
    if family == "alexnet":
        order = _ALEXNET.index(pos)
        if order <= _ALEXNET.index("conv2"):
            return 1.0
        return 10.0 if order <= _ALEXNET.index("conv4") else 100.0
    if family == "vgg16":
        block = _vgg_block(pos)
        return 1.0 if block <= 2 else 10.0 if block <= 4 else 100.0
    if pos is None:
        return 100.0
    return 1.0 if pos < 1 / 3 else 10.0 if pos < 2 / 3 else 100.0


# `fast`: mv2016's objective (same C, range/TV priors, B, jitter T per layer), optimised
# over a decorrelated 1/f Fourier parameterization with Adam and a cosine schedule from 4,
# in a tenth of the steps. Chosen by measurement (bench/convergence.py,
# results/convergence/): of the parameterizations x schedules tried it came closest to the
# 3500-step mv2016 run at expanded_conv_5_add and _12_add of MobileNetV2 (mv2016's own
# schedule compressed to 350 steps was better at expanded_conv_3_add and at random AlexNet
# conv3); it does NOT reach the 3500-step quality (README: Convergence and the fast preset).
FAST = dict(steps=350, parameterization="fourier", lr_schedule="cosine", lr_values=[4.0],
            lr_boundaries=[])


def get_settings(preset, classifier, layer, **overrides):
    """Complete settings of `preset` (mv2016 | mv2015 | fast) for `layer` of `classifier`;
    any field can be overridden; the result is validated (ValueError names the flag)."""
    if preset not in PRESETS:
        raise ValueError(f"Unknown preset '{preset}'. Choose one of {list(PRESETS)}.")
    family, pos = layer_family_position(classifier, layer)
    h, w = classifier.input_size
    mean = image_mean(classifier)
    if preset in ("mv2016", "fast"):
        B, alpha = 80.0, 6.0
        C, T = _mv2016_layer(family, pos)
        lr0 = B ** 2 / alpha
        s = InversionSettings(
            preset=preset, layer=layer, steps=3500, optimizer="adam",
            lr_values=[lr0 * 1e-2, lr0 * 3e-3, lr0 * 1e-3],
            lr_boundaries=[1000 / 3500, 2000 / 3500], feature_weight=float(C),
            range_alpha=alpha, range_weight=1.0, bound=B, bound_factor=2.0, tv_beta=2.0,
            tv_V=B / 6.5, tv_per_pixel=True, tv_weight=1.0, alpha_weight=0.0,
            jitter=int(T), jitter_off=2750 / 3500, sigma=0.0, init_std=B / 6.5,
            image_mean=mean)
        if preset == "fast":
            s = s.replace(**FAST)
    else:
        sig = effective_sigma(SIGMA_2015, h, w)
        s = InversionSettings(
            preset=preset, layer=layer, steps=400, optimizer="sgd", momentum=0.9,
            lr_values=[0.004, 0.0004, 0.00004], lr_boundaries=[100 / 400, 300 / 400],
            feature_weight=1.0, range_weight=0.0, bound_factor=0.0, tv_beta=2.0,
            tv_V=sig, tv_per_pixel=False, tv_weight=_mv2015_tv(family, pos),
            alpha_norm=6.0, alpha_weight=2.16e8, jitter=0, jitter_off=1.0, sigma=SIGMA_2015,
            # u ~ N(0, 1/(227^2 3)): a unit-norm start at the paper's size (std ~69 in 0-255).
            init_std=sig / (227 * 227 * 3) ** 0.5, image_mean=mean)
    return s.replace(**overrides).validate()
