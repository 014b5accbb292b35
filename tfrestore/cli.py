"""Flags and error handling shared by the absl binaries in bin/."""
import os
import sys

from absl import flags, logging

__all__ = ["define_classifier_flags", "classifier_from_flags", "command_line",
           "exit_on_user_error"]


def define_classifier_flags():
    flags.DEFINE_string("classifier", "mobilenet_v2_tflite",
                        "Network name (mobilenet_v2_tflite: the bundled ImageNet MobileNetV2, "
                        "offline; vgg16, alexnet, caffenet, mobilenet_v2, resnet50, "
                        "inception_v3, ...) or a path to a .keras or .tflite classifier.")
    flags.DEFINE_string("weights", "imagenet",
                        "imagenet (downloaded and cached by Keras; for mobilenet_v2_tflite "
                        "the bundled file's own), random (seeded by "
                        "--weights_seed) or a path (.weights.h5, .keras, .npy, .tflite).")
    flags.DEFINE_integer("weights_seed", 0, "Seed of --weights=random.")
    flags.DEFINE_string("preprocessing", None,
                        "For .keras classifiers: how RGB 0-255 maps to the input "
                        "(caffe, tf, torch, raw). Default raw; .tflite files: from the "
                        "file's input quantisation.")
    flags.DEFINE_string("labels", None, "For .keras/.tflite classifiers: a labels file, one "
                        "label per line in output order.")


def classifier_from_flags(input_size=None):
    """The classifier named by the flags of `define_classifier_flags` (all of them)."""
    from tfrestore.classifiers import load_classifier
    f = flags.FLAGS
    return load_classifier(f.classifier, weights=f.weights, seed=f.weights_seed,
                           input_size=input_size, preprocessing=f.preprocessing,
                           labels=f.labels)


def command_line():
    """The command as run, for the header of a results file."""
    return "python " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:])


def _user_errors():
    from tfrestore.classifiers import UnknownLayerError, WeightsError
    from tfrestore.data import ImageInputError
    return (UnknownLayerError, WeightsError, ImageInputError, FileNotFoundError, ValueError)


def exit_on_user_error(main):
    """Wrap an absl main: a user error prints its message and exits with status 2."""
    def wrapped(argv):
        try:
            return main(argv)
        except _user_errors() as e:
            logging.error("%s", e)
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
    return wrapped
