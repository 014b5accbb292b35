"""Flags and error handling shared by the absl binaries in bin/."""
import os
import shlex
import sys
import traceback

from absl import app, flags

__all__ = ["define_classifier_flags", "classifier_from_flags", "command_line",
           "exit_on_user_error", "run", "user_error_message", "EXIT_USER_ERROR"]

# Exit status of every bad input: flag errors, bad values, missing or unreadable files.
EXIT_USER_ERROR = 2


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


def parse_scalar(text):
    """A flag's VALUE in KEY=VALUE overrides: int, float, true/false, else the string."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def command_line(drop=()):
    """The command as run, for the header of a results file; shell-quoted, so it pastes back
    (a flag value such as `--baseline=M&V 2016` holds spaces and `&`). Flags named in `drop`
    are left out in any spelling absl accepts (`--f=v`, `--f v`, `--f`, `--nof`)."""
    kept = _without_flags(sys.argv[1:], drop)
    return "python " + shlex.join([os.path.relpath(sys.argv[0])] + kept)


def _without_flags(args, drop, flag_values=flags.FLAGS):
    kept, skip_value = [], False
    for arg in args:
        if skip_value:
            skip_value = False
            continue
        name = arg.lstrip("-").split("=", 1)[0] if arg.startswith("-") else None
        if name is not None and name.startswith("no") and name[2:] in drop:
            continue  # --noflag, a boolean's false
        if name in drop:
            # A non-boolean flag given as `--flag value` takes the next item with it.
            takes_value = name in flag_values and not flag_values[name].boolean
            skip_value = "=" not in arg and takes_value
            continue
        kept.append(arg)
    return kept


def _user_errors():
    """The exception types that mean "the input is wrong", not "tfrestore is broken".

    OSError covers an output folder that is a file or cannot be created, a missing
    config, a permission problem; the package's own error types all name the fix.
    """
    from tfrestore.classifiers import UnknownLayerError, WeightsError
    from tfrestore.data import ImageInputError
    from tfrestore.metrics.perceptual import PerceptualUnavailable
    return (UnknownLayerError, WeightsError, ImageInputError, PerceptualUnavailable,
            OSError, ValueError)


def _debug():
    """--debug, if the binary has parsed its flags (any binary importing cli defines it)."""
    try:
        return bool(flags.FLAGS["debug"].value) if flags.FLAGS.is_parsed() else False
    except KeyError:
        return False


def user_error_message(e):
    """`error: ...` on one line (multi-line messages are joined), as printed on exit."""
    text = "; ".join(line.strip() for line in str(e).splitlines() if line.strip())
    return f"error: {text or type(e).__name__}"


def _fail(message, exc=None):
    if exc is not None and _debug():
        traceback.print_exception(exc)
    print(message, file=sys.stderr, flush=True)
    sys.exit(EXIT_USER_ERROR)


def exit_on_user_error(main):
    """Wrap an absl main: a user error prints one line `error: ...` and exits with status 2.

    The traceback is printed too when the binary runs with --debug. Other exceptions
    (defects of tfrestore) propagate with their traceback as usual.
    """
    if getattr(main, "_exits_on_user_error", False):
        return main

    def wrapped(argv):
        try:
            return main(argv)
        except _user_errors() as e:
            _fail(user_error_message(e), e)
    wrapped._exits_on_user_error = True
    wrapped.__doc__, wrapped.__name__ = main.__doc__, main.__name__
    return wrapped


def _parse_flags(argv):
    """absl's flag parsing, but a bad flag exits 2 (absl itself exits 1) with one line."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        _fail(f"{user_error_message(e)} (see --helpshort)", e)


def run(main):
    """`app.run(main)` for every binary: bad flags and user errors exit 2 with one line;
    the shared flags (defined here) are shown by the binary's --helpshort."""
    _adopt_shared_flags()
    app.run(exit_on_user_error(main), flags_parser=_parse_flags)


def _adopt_shared_flags():
    f = flags.FLAGS
    main_module = sys.argv[0]
    for flag in f.flags_by_module_dict().get(__name__, []):
        f.register_key_flag_for_module(main_module, flag)


flags.DEFINE_bool("debug", False, "On an error, also print the full traceback.")


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

    from tfrestore.io import make_folder
    make_folder(path, "--output_dir")
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


# --- Flag groups shared by the training binaries ----------------------------------------

def define_init_flag():
    """--init: the saved model a trainer starts from (its file's digest is a setting)."""
    flags.DEFINE_string("init", None, "Start from this saved model (.keras): train_dae, a DAE "
                        "whose architecture and weights are fine-tuned (--features/--dilations "
                        "are then ignored); train_prior --objective=field, the patch-trained "
                        "prior to train further as a field; train_inverter, a trained inverter "
                        "with the same blocks, kind and widths (e.g. converged stacked modules "
                        "to fine-tune --mode=joint or end_to_end).")


def define_prior_training_flags(*, input_size, steps, batch_size, lr, eval_every,
                                checkpoint_every, output_help, batch_help="Examples per step.",
                                lr_help="Learning rate.", seed_help="Seed of every random "
                                "choice (image split, initialisation, sampling, batch order)."):
    """The flags every prior trainer shares (bin/train_prior.py, bin/train_dae.py): the
    data (images, size, grey, classifier layer), the held-out split, the run (steps, batch,
    learning rate, seed), checkpoints, TensorBoard and --output; each binary gives its
    defaults."""
    flags.DEFINE_list("images", None, "Training images: files, folders, .txt lists, "
                      "scikit-image photo names, tfds:NAME:SPLIT:COUNT (comma-separated).")
    flags.DEFINE_integer("input_size", input_size, "Images are resized (short side) and "
                         "centre-cropped to this square size.")
    flags.DEFINE_integer("limit", 0, "Use at most this many images (0: all).")
    # Earlier names of flags renamed to the name every binary uses.
    flags.DEFINE_alias("image_size", "input_size")
    flags.DEFINE_alias("max_images", "limit")
    flags.DEFINE_bool("grey", False, "Model BT.601 luminance (1 channel) instead of RGB.")
    flags.DEFINE_string("classifier", None, "Model this classifier's feature maps (name or "
                        ".keras/.tflite path) instead of pixels; needs --layer.")
    flags.DEFINE_string("weights", "imagenet", "Classifier weights: imagenet, random or a "
                        "path.")
    flags.DEFINE_integer("weights_seed", 0, "Seed of --weights=random.")
    flags.DEFINE_string("layer", None, "Classifier layer whose feature maps are modelled.")
    flags.DEFINE_float("val_fraction", 0.1, "Share of images held out for validation (split "
                       "by image).")
    flags.DEFINE_list("val_images", None, "Held-out images by base name (overrides "
                      "--val_fraction).")
    flags.DEFINE_integer("steps", steps, "Optimiser steps (capped by $TFRESTORE_MAX_STEPS).")
    flags.DEFINE_integer("batch_size", batch_size, batch_help)
    flags.DEFINE_float("lr", lr, lr_help)
    flags.DEFINE_integer("seed", 0, seed_help)
    flags.DEFINE_integer("eval_every", eval_every, "Validate this often (steps).")
    flags.DEFINE_string("checkpoint_dir", None, "tf.train checkpoints; a rerun with the same "
                        "settings resumes from here (other settings: an error naming them).")
    flags.DEFINE_bool("fresh", False, "Delete the run in --checkpoint_dir and start afresh.")
    flags.DEFINE_integer("checkpoint_every", checkpoint_every, "Checkpoint every this many "
                         "steps.")
    flags.DEFINE_string("tensorboard_dir", None, "TensorBoard log folder.")
    flags.DEFINE_string("output", None, output_help)
    define_init_flag()
    flags.DEFINE_integer("crop", 40, "Training crop size (train_dae; train_prior "
                         "--objective=field).")
    flags.mark_flag_as_required("images")
    flags.mark_flag_as_required("output")


def define_strategy_flags():
    """--strategy (default/one_device | mirrored | multi_worker | tpu), --cpu_replicas, --tpu."""
    from tfrestore.distribute import STRATEGIES
    flags.DEFINE_enum("strategy", "default", list(STRATEGIES),
                      "tf.distribute strategy: default/one_device (this device), mirrored "
                      "(data-parallel over this machine's devices), multi_worker (several "
                      "machines, cluster from $TF_CONFIG; every worker runs the same command) "
                      "or tpu (TPUStrategy; see --tpu). --batch_size is the global batch.")
    flags.DEFINE_integer("cpu_replicas", 0, "Split the CPU into this many logical devices "
                         "(with --strategy=mirrored: data-parallel on one machine, for tests).")
    flags.DEFINE_string("tpu", None, "--strategy=tpu: the TPU's name or grpc:// address "
                        "(default: this Cloud TPU VM's, or $TPU_NAME).")
    flags.DEFINE_alias("distribute", "strategy")   # the flag's earlier name (train_prior)


def strategy_from_flags():
    """The tf.distribute strategy of --strategy/--cpu_replicas/--tpu (None = the default).

    Must run before TensorFlow initialises its devices (any op does that)."""
    from tfrestore.distribute import make_strategy
    f = flags.FLAGS
    return make_strategy(f.strategy, cpu_replicas=f.cpu_replicas,
                         tpu=f.tpu or os.environ.get("TPU_NAME"))


# --- The flag group of the cell-by-cell studies (bin/compare.py, bin/search_weights.py) ---

def define_cell_run_flags():
    """--shard, --work_dir, --curve_every, --verbose: how the cells of a comparison or a
    weight search are run (split over machines, checkpointed, their curves recorded)."""
    flags.DEFINE_string("shard", None, "I/N: run only every N-th cell (layer, method), from "
                        "cell I, into OUTPUT.shard-I-of-N.json; N machines sharing the output "
                        "folder run I = 0..N-1. The last shard to finish (or a rerun without "
                        "--shard, which computes nothing new) writes the merged outputs.")
    flags.DEFINE_string("work_dir", None, "Per-cell checkpoints and curves of the cells being "
                        "run (default: OUTPUT_cells/): an interrupted cell resumes from its "
                        "last checkpoint (same settings only); a finished cell's folder is "
                        "removed.")
    flags.DEFINE_integer("curve_every", 50, "Record each cell's curve (feature error, SSIM "
                         "per image against step and seconds) every this many steps.")
    flags.DEFINE_bool("verbose", False, "Print each cell's progress (loss terms, time left).")
    flags.DEFINE_integer("feature_chunk", 0, "Run the classifier on at most this many images "
                         "at a time (0: the whole batch). Speed only, the maths is the same; "
                         "float rounding differs, so a rerun that must match a cell to the "
                         "last digit uses the cell's value (recorded in it). CPU: 4 is "
                         "1.4x cheaper per step at 20 images (bench/bench_feature_chunk.py).")


def cell_run_options(output):
    """run_comparison's keyword arguments from the cell-run flags, for outputs at `output`."""
    f = flags.FLAGS
    return {"work_dir": f.work_dir or output + "_cells", "curve_every": f.curve_every,
            "verbose": f.verbose, "feature_chunk": f.feature_chunk}


def results_command():
    """The command a results file records: the one that reproduces it, so without --shard
    (the merged outputs) and without --render_only (which only redraws them)."""
    return command_line(drop=("shard", "render_only"))


# --- The flag group of every image optimisation binary (invert, actmax, caricature) -------

# Fields of InversionSettings each binary defines itself (its own defaults and help).
OWN_SETTINGS = ("preset", "layer", "steps", "seed")


def define_optimisation_flags():
    """--output_dir, --log_every, --prior (repeatable) and one flag per other
    InversionSettings field (default None = the preset's value)."""
    from tfrestore.inversion.presets import InversionSettings
    flags.DEFINE_string("output_dir", None, "Folder for the run's PNGs, figures, arrays.npz, "
                        "metrics.json and TensorBoard summaries.")
    flags.DEFINE_integer("log_every", None, "Progress/TensorBoard logging interval (steps).")
    flags.DEFINE_multi_string("prior", [], "A learned prior as PATH[@LAYER][:WEIGHT] (LAYER "
                              "'image' by default), repeatable, e.g. "
                              "--prior=checkpoints/foe_8x8x3_512.keras@image:1e-5 "
                              "--prior=fmap.keras@expanded_conv_3_add:1e-4.")
    define_settings_flags(InversionSettings, skip=OWN_SETTINGS)


def optimisation_settings(classifier, layer):
    """`get_settings` of --preset for `layer`, with --steps, --seed and every given
    settings flag."""
    from tfrestore.inversion.presets import InversionSettings, get_settings
    f = flags.FLAGS
    return get_settings(f.preset, classifier, layer, steps=f.steps, seed=f.seed,
                        **settings_overrides(InversionSettings, skip=OWN_SETTINGS))
