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

from tfrestore.inversion.transforms import SIGMA_2015, effective_sigma

__all__ = ["InversionSettings", "PRESETS", "get_settings", "layer_family_position",
           "image_mean", "IMAGENET_MEAN_RGB"]

PRESETS = ("mv2016", "mv2015")
IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)


@dataclass
class InversionSettings:
    """Every number of one pre-image optimisation (recorded with its outputs)."""
    preset: str = "mv2016"
    layer: str = ""
    steps: int = 3500
    seed: int = 0
    optimizer: str = "adam"                 # "adam" | "sgd" (momentum, reset at lr changes)
    lr_values: list = field(default_factory=lambda: [1066.67e-2, 1066.67 * 3e-3,
                                                     1066.67e-3])
    lr_boundaries: list = field(default_factory=lambda: [1000 / 3500, 2000 / 3500])
    momentum: float = 0.9
    feature_weight: float = 300.0          # C
    range_alpha: float = 6.0               # alpha of N_alpha (2016)
    range_weight: float = 1.0              # multiplies N_alpha / (H W B^alpha); 0 = off
    bound: float = 80.0                    # B, on the mean-subtracted 0-255 image
    bound_factor: float = 2.0              # B+ = bound_factor * B; 0 = no projection
    tv_beta: float = 2.0
    tv_V: float = 80.0 / 6.5               # V: TV is computed on x / V
    tv_per_pixel: bool = True              # divide TV by H*W (2016)
    tv_weight: float = 1.0
    alpha_norm: float = 6.0                # alpha of R_alpha (2015)
    alpha_weight: float = 0.0              # lambda_alpha; 0 = off
    jitter: int = 1                        # T, pixels
    jitter_off: float = 2750 / 3500        # fraction of the run after which jitter stops
    sigma: float = 0.0                     # sigma-scaling of the variable; 0 = off (1)
    init_std: float = 80.0 / 6.5           # std of the Gaussian noise start, 0-255 units
    image_mean: list = field(default_factory=lambda: list(IMAGENET_MEAN_RGB))
    prior_start: float = 0.0               # fraction of the run before learned priors
                                           # switch on (two-phase schedule); 0 = from start
    prior_crop: float = 0.0                # learned priors on a random crop of this fraction
                                           # of the map per step (PriorTerm.crop); 0 = whole

    def replace(self, **overrides):
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"Unknown inversion setting(s) {sorted(unknown)}; valid: "
                             f"{[f.name for f in dataclasses.fields(self)]}.")
        return dataclasses.replace(self, **{k: v for k, v in overrides.items()
                                             if v is not None})

    def as_dict(self):
        return dataclasses.asdict(self)


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


def get_settings(preset, classifier, layer, **overrides):
    """Complete settings of `preset` ("mv2016" | "mv2015") for `layer` of `classifier`."""
    if preset not in PRESETS:
        raise ValueError(f"Unknown preset '{preset}'. Choose one of {list(PRESETS)}.")
    family, pos = layer_family_position(classifier, layer)
    h, w = classifier.input_size
    mean = image_mean(classifier)
    if preset == "mv2016":
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
    return s.replace(**overrides)
