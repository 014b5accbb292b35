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


# --- Flags generated from a settings dataclass (one definition per setting) -------------

def _flag_definer(f):
    """The absl DEFINE_* function for a dataclass field's type."""
    t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    return {"int": flags.DEFINE_integer, "float": flags.DEFINE_float,
            "bool": flags.DEFINE_bool, "str": flags.DEFINE_string,
            "list": flags.DEFINE_list}[t]


def define_settings_flags(settings_class, skip=(), prefix=""):
    """One flag per field of `settings_class` (a dataclass whose fields carry a "help"
    metadata entry), default None = the preset's value. Returns the flag names."""
    import dataclasses
    names = []
    for f in dataclasses.fields(settings_class):
        if f.name in skip:
            continue
        name = prefix + f.name
        _flag_definer(f)(name, None, f.metadata.get("help", ""))
        names.append(name)
    return names


def settings_overrides(settings_class, skip=(), prefix=""):
    """{field: value} of the generated flags that were given (lists parsed as floats when
    the field's default is a list of numbers)."""
    import dataclasses
    out, FLAGS = {}, flags.FLAGS
    for f in dataclasses.fields(settings_class):
        if f.name in skip:
            continue
        value = getattr(FLAGS, prefix + f.name)
        if value is None:
            continue
        if isinstance(value, list):
            try:
                value = [float(v) for v in value]
            except ValueError:
                raise ValueError(f"--{prefix + f.name}={','.join(value)}: expected "
                                 f"comma-separated numbers.") from None
        out[f.name] = value
    return out


def prepare_output_dir(path, outputs=()):
    """Create `path` for a run's outputs; remove the listed outputs of a previous run there
    (so nothing stale sits beside the new results). A clear error if it cannot be a folder."""
    import shutil
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"--output_dir={path} is a file; give a folder (it is created).")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--output_dir={path} cannot be created ({e.strerror}); give a "
                         f"writable folder.") from None
    removed = []
    for name in outputs:
        p = os.path.join(path, name)
        if os.path.isdir(p):
            shutil.rmtree(p)
            removed.append(name)
        elif os.path.exists(p):
            os.remove(p)
            removed.append(name)
    if removed:
        print(f"note: replaced the previous run's {', '.join(removed)} in {path}",
              file=sys.stderr)
    return path
