"""keras.applications classifiers (VGG16 with thesis aliases, MobileNetV2, ResNet50, ...)."""
import os

import keras

from tfrestore.classifiers.base import Classifier
from tfrestore.classifiers.weights import (WeightsError, imagenet_unavailable,
                                          parse_weights, random_init)

__all__ = ["APPLICATIONS", "VGG16_ALIASES", "load_application", "imagenet_labels"]

# name -> (constructor, preprocessing preset, default input size, ImageNet weight file)
_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
APPLICATIONS = {
    "vgg16": ("VGG16", "caffe", 224, "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5"),
    "vgg19": ("VGG19", "caffe", 224, "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels.h5"),
    "resnet50": ("ResNet50", "caffe", 224,
                 "resnet/resnet50_weights_tf_dim_ordering_tf_kernels.h5"),
    "mobilenet": ("MobileNet", "tf", 224, "mobilenet/mobilenet_1_0_224_tf.h5"),
    "mobilenet_v2": ("MobileNetV2", "tf", 224,
                     "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"),
    "inception_v3": ("InceptionV3", "tf", 299,
                     "inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5"),
    "densenet121": ("DenseNet121", "torch", 224,
                    "densenet/densenet121_weights_tf_dim_ordering_tf_kernels.h5"),
    "efficientnet_b0": ("EfficientNetB0", "raw", 224, "efficientnetv2/efficientnetb0.h5"),
}

# Thesis names (Simonyan & Zisserman / Caffe) -> Keras VGG16 names.
VGG16_ALIASES = {"fc6": "fc1", "fc7": "fc2", "fc8": "predictions/lin",
                 "softmax": "predictions/softmax", "probs": "predictions/softmax"}
for _b, _n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)):
    VGG16_ALIASES[f"pool{_b}"] = f"block{_b}_pool"
    for _i in range(1, _n + 1):
        VGG16_ALIASES[f"conv{_b}_{_i}"] = f"block{_b}_conv{_i}"


def imagenet_labels():
    """The 1000 ImageNet class names in Keras's index order."""
    path = os.path.join(os.path.dirname(__file__), "imagenet_labels.txt")
    with open(path) as f:
        return [line.strip() for line in f]


def load_application(name, weights="imagenet", seed=0, input_size=None):
    """A `Classifier` for a keras.applications network.

    `input_size` other than the network's default drops the classifier head
    (convolutional layers only), as keras.applications requires.
    """
    if name not in APPLICATIONS:
        raise ValueError(f"Unknown application '{name}'. Known: {sorted(APPLICATIONS)}.")
    ctor_name, prep, size, weight_file = APPLICATIONS[name]
    ctor = getattr(keras.applications, ctor_name)
    spec = parse_weights(weights, seed)
    size = int(input_size or size)
    include_top = size == APPLICATIONS[name][2]
    kwargs = dict(include_top=include_top, input_shape=(size, size, 3))
    if spec.kind == "imagenet":
        try:
            model = ctor(weights="imagenet", **kwargs)
        except Exception as e:  # Keras raises a bare Exception on download failure
            fname = weight_file if include_top else weight_file.replace(".h5", "_notop.h5")
            raise imagenet_unavailable(ctor_name, os.path.basename(fname),
                                       _WEIGHTS_URL + fname, f"{type(e).__name__}: {e}") from e
    else:
        random_init(spec.seed)
        try:
            model = ctor(weights=None, **kwargs)
        except ValueError as e:  # e.g. an input size below the network's minimum
            raise ValueError(f"{name} at input_size={size}: {e}") from None
        if spec.kind == "file":
            try:
                if spec.path.endswith(".keras"):
                    model.set_weights(keras.models.load_model(spec.path, compile=False)
                                      .get_weights())
                else:
                    model.load_weights(spec.path)
            except Exception as e:
                raise WeightsError(f"Cannot load weights for {ctor_name} from "
                                   f"'{spec.path}': {e}") from e
    aliases = VGG16_ALIASES if name == "vgg16" else {}
    if not include_top:
        aliases = {a: t for a, t in aliases.items()
                   if not t.startswith(("fc", "predictions"))}
    return Classifier(name, model, prep, aliases=aliases,
                      labels=imagenet_labels() if include_top else None, weights=spec)
