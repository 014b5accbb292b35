"""Every bad input a clear error: one table of commands and API calls -> exit status and a
fragment of the one-line message (issue 14). Binaries run as children of one server that
imports TensorFlow once (tests/binary_runner.py); a user error must exit 2 with exactly
one `error: ...` line and no traceback.

Placeholders in a row: {tmp} the fixture folder, {tiny} a 10-class 32x32 .keras
classifier, {bad_keras} a corrupt .keras, {prior} the shipped FoE prior.
"""
import json
import os
import re
import subprocess
import sys
import zipfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from binary_runner import REPO, BinaryRunner  # noqa: E402

PRIOR = "checkpoints/foe_8x8x3_512.keras"

# Files every row may use, written by a child of the runner (keeps TF out of pytest).
_FIXTURES = r'''
import json, os, numpy as np, keras, tensorflow as tf
tmp = TMP
inp = keras.Input((32, 32, 3))
x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
keras.Model(inp, keras.layers.Dense(10, activation="softmax", name="fc")(x)).save(
    f"{tmp}/tiny.keras")
open(f"{tmp}/bad.keras", "wb").write(b"this is not a zip archive")
def png(path, h, w):
    img = (np.random.default_rng(0).uniform(0, 255, (h, w, 3))).astype("uint8")
    open(path, "wb").write(tf.io.encode_png(img).numpy())
png(f"{tmp}/a,b.png", 40, 40)
png(f"{tmp}/tiny1x1.png", 1, 1)
png(f"{tmp}/ok.png", 40, 48)
open(f"{tmp}/empty.png", "wb").close()
open(f"{tmp}/text.png", "w").write("not an image")
os.makedirs(f"{tmp}/noimages", exist_ok=True)
open(f"{tmp}/noimages/readme.md", "w").write("no images here")
open(f"{tmp}/list.txt", "w").write("ok.png\nmissing.png\n")
open(f"{tmp}/broken.json", "w").write('{"classifier": "vgg16", "layers": [')
open(f"{tmp}/nokeys.json", "w").write('{"classifier": "vgg16"}')
open(f"{tmp}/list.json", "w").write('[1, 2]')
open(f"{tmp}/alexnet_seed1.json", "w").write(json.dumps({
    "classifier": "alexnet", "weights": "imagenet", "weights_seed": 1, "layers": ["conv1/lin"],
    "methods": {"network": {"inverter": {
        "conv1/lin": "checkpoints/inverters/alexnet_random_conv1_stacked.keras"}}}}))
open(f"{tmp}/labels3.txt", "w").write("a\nb\nc\n")
open(f"{tmp}/a_file", "w").write("x")
'''

TRAIN_PRIOR = ["--images=chelsea,astronaut,coffee,rocket", "--image_size=32", "--patch_size=4",
               "--n_experts=8", "--n_train=500", "--n_val=100", "--val_fraction=0.25",
               "--steps=4", "--batch_size=50", "--eval_every=2", "--checkpoint_every=2",
               "--checkpoint_dir={tmp}/prior_ckpt", "--output={tmp}/prior.keras"]
TRAIN_INVERTER = ["--classifier=vgg16", "--weights=random", "--input_size=32",
                  "--images=chelsea,astronaut,coffee", "--num_val=1", "--blocks=pool1,pool2",
                  "--mode=joint", "--steps=2", "--batch_size=2", "--checkpoint_every=1",
                  "--output_dir={tmp}/inverter"]
VGG32 = "load_classifier('vgg16', weights='random', input_size=32)"
API = ("import numpy as np\nfrom tfrestore.classifiers import load_classifier\n"
       "from tfrestore.data import load_images\n")

# (id, binary or "api", arguments or code, exit status, fragment of stderr (or stdout for 0))
CASES = [
    # -- flags and the error wrapper (tfrestore.cli)
    ("unknown_flag", "classify", ["--steps=abc"], 2, "Unknown command line flag 'steps'"),
    ("bad_int_flag", "classify", ["--images=chelsea", "--top_k=abc"], 2, "flag --top_k=abc"),
    ("missing_required", "classify", [], 2, "--images"),
    ("missing_output", "train_prior", ["--images=chelsea"], 2, "--output"),
    ("bad_enum", "train_inverter", ["--images=chelsea", "--output_dir={tmp}/x", "--mode=x"],
     2, "--mode"),
    ("debug_traceback", "classify", ["--classifier={tiny}", "--images=nonexistent",
                                     "--debug"], 2, "Traceback (most recent call last)"),
    # -- resuming with other settings (tfrestore.runstate)
    ("prior_other_seed", "train_prior", TRAIN_PRIOR + ["--seed=1"], 2, "seed: 0 -> 1"),
    ("prior_other_split", "train_prior", TRAIN_PRIOR + ["--steps=6", "--val_fraction=0.5"],
     2, "steps: 4 -> 6; val_fraction: 0.25 -> 0.5"),
    ("prior_names_fresh", "train_prior", TRAIN_PRIOR + ["--n_experts=4"], 2, "--fresh"),
    ("inverter_other_mode", "train_inverter", TRAIN_INVERTER + ["--mode=end_to_end",
                                                                "--seed=1"],
     2, 'mode: "joint" -> "end_to_end"; seed: 0 -> 1'),
    ("inverter_names_fresh", "train_inverter", TRAIN_INVERTER + ["--steps=3"], 2, "--fresh"),
    ("ckpt_dir_is_file", "train_prior", TRAIN_PRIOR + ["--checkpoint_dir={tmp}/a_file"], 2,
     "is a file"),
    ("output_dir_is_file", "train_inverter", TRAIN_INVERTER + ["--output_dir={tmp}/a_file"],
     2, "--output_dir '{tmp}/a_file' cannot be created: '{tmp}/a_file' is a file"),
    ("prior_output_under_file", "train_prior", TRAIN_PRIOR + ["--output={tmp}/a_file/p.keras",
                                                              "--checkpoint_dir="],
     2, "--output's folder '{tmp}/a_file' cannot be created: '{tmp}/a_file' is a file"),
    # -- classifier loading (tfrestore.classifiers)
    ("input_size_zero", "api", f"{API}{VGG32.replace('32', '0')}", 2, "input_size=0"),
    ("input_size_negative", "api", f"{API}{VGG32.replace('32', '-5')}", 2, "input_size=-5"),
    ("alexnet_input_size", "api", f"{API}load_classifier('alexnet', weights='random', "
                                  f"input_size=64)", 2, "takes 227x227 images only"),
    ("keras_input_size", "api", f"{API}load_classifier('{{tiny}}', input_size=64)", 2,
     "takes 32x32 images only"),
    ("keras_weights", "classify", ["--classifier={tiny}", "--weights=random",
                                   "--images=chelsea"], 2, "holds its own weights"),
    ("corrupt_keras_classifier", "classify", ["--classifier={bad_keras}", "--images=chelsea"],
     2, "cannot be read as a Keras model"),
    ("corrupt_keras_prior", "api", "from tfrestore.priors import load_prior\n"
                                   "load_prior('{bad_keras}')", 2,
     "cannot be read as a Keras model"),
    ("prior_as_classifier", "classify", [f"--classifier={PRIOR}", "--images=chelsea"], 2,
     "is a learned patch prior, not a classifier: pass it as --prior="),
    ("no_batch_dimension", "api", f"{API}clf = load_classifier('{{tiny}}')\n"
                                  "clf.predict_proba(np.full((32, 32, 3), 100.0))", 2,
     "expected a batch [N, H, W, 3]"),
    ("invert_no_batch", "api", f"{API}from tfrestore.inversion import invert, get_settings\n"
                               f"clf = {VGG32}\n"
                               "invert(clf, np.full((32, 32, 3), 9.0), "
                               "get_settings('mv2016', clf, 'pool1'))", 2,
     "expected a batch [N, H, W, 3]"),
    ("preprocessing_named_net", "api", f"{API}load_classifier('vgg16', weights='random', "
                                       f"preprocessing='tf')", 2,
     "preprocessing and labels apply to .keras and .tflite files and bundled networks only"),
    # -- image input (tfrestore.data)
    ("comma_in_path", "classify", ["--classifier={tiny}", "--images={tmp}/a,b.png",
                                   "--top_k=1"], 0, "a,b.png"),
    ("tfds_offline", "classify", ["--classifier={tiny}", "--images=tfds:mnist:train:2"], 2,
     "tensorflow-datasets cannot load 'mnist'"),
    ("tfds_bad_count", "classify", ["--classifier={tiny}", "--images=tfds:mnist:train:two"], 2,
     "COUNT 'two' must be a whole number"),
    ("image_1x1", "classify", ["--classifier={tiny}", "--images={tmp}/tiny1x1.png"], 2,
     "at least 8 pixels per side"),
    ("nan_image", "api", f"{API}from tfrestore.metrics import evaluate_reconstructions\n"
                         "clf = load_classifier('{tiny}')\nx = np.full((1, 32, 32, 3), 9.0)\n"
                         "x[0, 3, 3, 1] = np.nan\nevaluate_reconstructions(clf, x, x, 'conv')",
     2, "NaN or infinite"),
    ("image_0_1", "api", f"{API}from tfrestore.inversion import invert, get_settings\n"
                         f"clf = {VGG32}\nx = load_images('chelsea', 32).images / 255.0\n"
                         "invert(clf, x, get_settings('mv2016', clf, 'pool1'))", 2,
     "looks like a 0-1 scale; expected RGB in the range 0-255"),
    # -- binaries' own values
    ("top_k_zero", "classify", ["--classifier={tiny}", "--images=chelsea", "--top_k=0"], 2,
     "top_k=0: must be between 1 and the 10 outputs"),
    ("top_k_negative", "classify", ["--classifier={tiny}", "--images=chelsea", "--top_k=-1"],
     2, "top_k=-1"),
    ("top_k_too_many", "classify", ["--classifier={tiny}", "--images=chelsea", "--top_k=11"],
     2, "top_k=11"),
    ("search_no_prior", "search_weights", ["--layer=pool1", "--images=chelsea",
                                           "--output={tmp}/s"], 2, "--prior: name at least one"),
    ("search_bad_grid", "search_weights", ["--layer=pool1", "--images=chelsea",
                                           f"--prior={PRIOR}@image", "--grid=abc",
                                           "--output={tmp}/s"], 2, "--grid: 'abc'"),
    ("compare_broken_json", "compare", ["--config={tmp}/broken.json", "--images=chelsea",
                                        "--output={tmp}/c"], 2,
     "--config '{tmp}/broken.json' is not valid JSON"),
    ("wrong_network_inverter", "api", f"{API}from tfrestore.inverters import load_inverter, "
                                      "check_inverter\n"
                                      "inv = load_inverter('checkpoints/"
                                      "inverter_mobilenet_v2_joint.keras')\n"
                                      f"check_inverter(inv, {VGG32}, 'expanded_conv_12_add')",
     2, "was trained for 'tf2_mobilenet_v2_1.0_224_ptq'"),
    ("joint_from_lower_level", "api", f"{API}from tfrestore.inverters import load_inverter, "
                                      "check_inverter\n"
                                      "inv = load_inverter('{tmp}/inverter/inverter.keras')\n"
                                      f"check_inverter(inv, {VGG32}, 'pool1')", 2,
     "trained in joint mode, from 'pool2' only"),
    ("patch_size_zero", "train_prior", TRAIN_PRIOR + ["--patch_size=0"], 2,
     "--patch_size=0: must be a whole number >= 1"),
    ("patch_size_too_big", "train_prior", TRAIN_PRIOR + ["--patch_size=40"], 2,
     "must be between 1 and --input_size=32"),
    ("n_experts_zero", "train_prior", TRAIN_PRIOR + ["--n_experts=0"], 2, "--n_experts=0"),
    ("lr_nan", "train_prior", TRAIN_PRIOR + ["--lr=nan"], 2, "--lr=nan: must be a finite"),
    # ---- further bad inputs (tried beyond the list; see the closing note)
    ("image_not_decodable", "classify", ["--classifier={tiny}", "--images={tmp}/text.png"], 2,
     "cannot be decoded: it is not a JPEG, PNG, GIF or BMP image"),
    ("image_empty_file", "classify", ["--classifier={tiny}", "--images={tmp}/empty.png"], 2,
     "is an empty file"),
    ("folder_without_images", "classify", ["--classifier={tiny}", "--images={tmp}/noimages"],
     2, "contains no images"),
    ("list_names_missing", "classify", ["--classifier={tiny}", "--images={tmp}/list.txt"], 2,
     "names 1 missing file(s)"),
    ("images_empty", "classify", ["--classifier={tiny}", "--images="], 2, "No images given"),
    ("unknown_classifier", "classify", ["--classifier=unknown_net", "--images=chelsea"], 2,
     "Unknown classifier 'unknown_net'"),
    ("labels_missing", "classify", ["--classifier={tiny}", "--labels={tmp}/none.txt",
                                    "--images=chelsea"], 2, "Labels file '{tmp}/none.txt'"),
    ("labels_count", "classify", ["--classifier={tiny}", "--labels={tmp}/labels3.txt",
                                  "--images=chelsea"], 2, "3 labels for"),
    ("limit_zero", "classify", ["--classifier={tiny}", "--images=chelsea", "--limit=0"], 2,
     "limit=0: must be a whole number"),
    ("tfds_count_zero", "classify", ["--classifier={tiny}", "--images=tfds:mnist:train:0"], 2,
     "COUNT '0'"),
    ("tfds_no_name", "classify", ["--classifier={tiny}", "--images=tfds:"], 2,
     "Bad dataset spec 'tfds:'"),
    ("tfds_extra_part", "classify", ["--classifier={tiny}", "--images=tfds:a:b:3:d"], 2,
     "Bad dataset spec 'tfds:a:b:3:d'"),
    ("preprocessing_unknown", "classify", ["--classifier={tiny}", "--preprocessing=bogus",
                                           "--images=chelsea"], 2, "Unknown preprocessing"),
    ("weights_seed_negative", "api", f"{API}load_classifier('vgg16', weights='random', "
                                     f"seed=-1)", 2, "seed=-1 (--weights_seed)"),
    ("input_size_fraction", "api", f"{API}{VGG32.replace('32', '2.5')}", 2, "input_size=2.5"),
    ("input_size_below_minimum", "api", f"{API}{VGG32.replace('32', '8')}", 2,
     "vgg16 at input_size=8"),
    ("labels_list_count", "api", f"{API}load_classifier('{{tiny}}', labels=['a'])", 2,
     "1 labels for"),
    ("four_channels", "api", "import numpy as np\nfrom tfrestore.data import check_rgb_batch\n"
                             "check_rgb_batch(np.zeros((1, 8, 8, 4)))", 2,
     "expected a batch [N, H, W, 3]"),
    ("above_255", "api", "import numpy as np\nfrom tfrestore.data import check_rgb_batch\n"
                         "check_rgb_batch(np.full((1, 8, 8, 3), 300.0))", 2,
     "expected RGB in the range 0-255"),
    ("load_size_zero", "api", f"{API}load_images('chelsea', 0)", 2, "size=0"),
    ("top_k_fraction", "api", f"{API}load_classifier('{{tiny}}').top_k("
                              "np.full((1, 32, 32, 3), 9.0), k=2.5)", 2, "top_k=2.5"),
    ("evaluate_shape_mismatch", "api", f"{API}from tfrestore.metrics import "
                                       "evaluate_reconstructions\n"
                                       "evaluate_reconstructions(load_classifier('{tiny}'), "
                                       "np.full((2, 32, 32, 3), 9.0), "
                                       "np.full((1, 32, 32, 3), 9.0), 'conv')", 2,
     "reconstructions have shape (1, 32, 32, 3), the images (2, 32, 32, 3)"),
    ("settings_record_corrupt", "api", "import os\nfrom tfrestore.runstate import "
                                       "check_settings\nos.makedirs('{tmp}/rs', exist_ok=True)\n"
                                       "open('{tmp}/rs/run_settings.json', 'w').write('{{bad')\n"
                                       "open('{tmp}/rs/ckpt-1.index', 'w').write('x')\n"
                                       "check_settings('{tmp}/rs', {{'a': 1}})", 2,
     "Cannot read the settings of the run in '{tmp}/rs'"),
    ("featmap_bins_zero", "featmap_stats", ["--classifier={tiny}", "--layer=conv",
                                            "--images=chelsea,astronaut", "--bins=0",
                                            "--output_dir={tmp}/fs"], 2, "--bins=0"),
    ("featmap_eps_nan", "featmap_stats", ["--classifier={tiny}", "--layer=conv",
                                          "--images=chelsea,astronaut", "--inverse_eps=nan",
                                          "--output_dir={tmp}/fs"], 2, "--inverse_eps=nan"),
    ("featmap_max_size", "featmap_stats", ["--classifier={tiny}", "--layer=conv",
                                           "--images=chelsea,astronaut", "--max_size=-1",
                                           "--output_dir={tmp}/fs"], 2, "--max_size=-1"),
    ("featmap_unknown_layer", "featmap_stats", ["--classifier={tiny}", "--layer=nonexistent",
                                                "--images=chelsea,astronaut",
                                                "--output_dir={tmp}/fs"], 2,
     "has no layer 'nonexistent'"),
    ("featmap_dense_layer", "featmap_stats", ["--classifier={tiny}", "--layer=fc",
                                              "--images=chelsea,astronaut",
                                              "--output_dir={tmp}/fs"], 2,
     "spatial statistics need an [H, W, C] feature map"),
    ("featmap_one_image", "featmap_stats", ["--classifier={tiny}", "--layer=conv",
                                            "--images=chelsea", "--output_dir={tmp}/fs"], 2,
     "Need at least 2 images"),
    ("featmap_output_is_file", "featmap_stats", ["--classifier={tiny}", "--layer=conv",
                                                 "--images=chelsea,astronaut",
                                                 "--output_dir={tmp}/a_file"], 2,
     "--output_dir '{tmp}/a_file' cannot be created"),
    ("search_random_negative", "search_weights", ["--layer=pool1", "--images=chelsea",
                                                  f"--prior={PRIOR}@image", "--random=-1",
                                                  "--output={tmp}/s"], 2, "--random=-1"),
    ("search_log_range", "search_weights", ["--layer=pool1", "--images=chelsea",
                                            f"--prior={PRIOR}@image", "--random=2",
                                            "--log_range=1e-3,1e-7", "--output={tmp}/s"], 2,
     "--log_range=1e-3,1e-7: give LOW,HIGH"),
    ("search_set_without_value", "search_weights", ["--layer=pool1", "--images=chelsea",
                                                    f"--prior={PRIOR}@image", "--set=foo",
                                                    "--output={tmp}/s"], 2,
     "--set 'foo': expected KEY=VALUE"),
    ("search_grid_negative", "search_weights", ["--layer=pool1", "--images=chelsea",
                                                f"--prior={PRIOR}@image", "--grid=-1",
                                                "--output={tmp}/s"], 2, "--grid: '-1'"),
    ("search_missing_prior", "search_weights", ["--layer=pool1", "--images=chelsea",
                                                "--prior={tmp}/none.keras@image",
                                                "--output={tmp}/s"], 2,
     "Prior file '{tmp}/none.keras' does not exist"),
    ("compare_missing_config", "compare", ["--config={tmp}/none.json", "--images=chelsea",
                                           "--output={tmp}/c"], 2,
     "--config '{tmp}/none.json' does not exist"),
    ("compare_config_not_object", "compare", ["--config={tmp}/list.json", "--images=chelsea",
                                              "--output={tmp}/c"], 2,
     "must hold a JSON object"),
    ("compare_config_keys", "compare", ["--config={tmp}/nokeys.json", "--images=chelsea",
                                        "--output={tmp}/c"], 2, "lacks layers, methods"),
    # --weights overrides the config's (else "imagenet" would be a download error here),
    # and an inverter trained on other weights (seed 0) is refused before any cell runs
    ("compare_inverter_other_weights", "compare", ["--config={tmp}/alexnet_seed1.json",
                                                   "--weights=random", "--images=chelsea",
                                                   "--limit=1", "--output={tmp}/c"], 2,
     "with weights random(seed=0), but this classifier has weights random(seed=1)"),
    ("compare_unknown_method", "compare", ["--config=results/compare/mobilenet_v2_config.json",
                                           "--methods=bogus", "--images=chelsea",
                                           "--output={tmp}/c"], 2,
     "--methods ['bogus'] not in the config"),
    ("prior_val_fraction", "train_prior", TRAIN_PRIOR + ["--val_fraction=1.5"], 2,
     "--val_fraction=1.5"),
    ("prior_output_not_keras", "train_prior", TRAIN_PRIOR + ["--output={tmp}/p.h5"], 2,
     "end the name in .keras"),
    ("prior_image_size_zero", "train_prior", TRAIN_PRIOR + ["--image_size=0"], 2,
     "--input_size=0"),
    ("prior_batch_zero", "train_prior", TRAIN_PRIOR + ["--batch_size=0"], 2, "--batch_size=0"),
    ("prior_steps_negative", "train_prior", TRAIN_PRIOR + ["--steps=-1"], 2, "--steps=-1"),
    ("prior_max_images", "train_prior", TRAIN_PRIOR + ["--max_images=-1"], 2,
     "--limit=-1"),
    ("prior_init_alpha", "train_prior", TRAIN_PRIOR + ["--init_alpha=-1"], 2,
     "--init_alpha=-1.0"),
    ("prior_field_without_init", "train_prior", TRAIN_PRIOR + ["--objective=field"], 2,
     "name the patch-trained prior to start from with --init"),
    ("prior_init_for_patches", "train_prior", TRAIN_PRIOR + ["--init={tmp}/p.keras"], 2,
     "--init is for --objective=field"),
    ("prior_whiten_dims", "train_prior", TRAIN_PRIOR + ["--whiten_dims=-3"], 2,
     "--whiten_dims=-3"),
    ("prior_n_val_zero", "train_prior", TRAIN_PRIOR + ["--n_val=0"], 2, "--n_val=0"),
    ("prior_cpu_replicas", "train_prior", TRAIN_PRIOR + ["--cpu_replicas=-1"], 2,
     "--cpu_replicas=-1"),
    ("prior_layer_alone", "train_prior", TRAIN_PRIOR + ["--layer=conv1_1"], 2,
     "need both --classifier and --layer"),
    ("prior_feature_patch", "train_prior", TRAIN_PRIOR + ["--classifier={tiny}", "--layer=conv",
                                                          "--patch_size=31",
                                                          "--checkpoint_dir="], 2,
     "--patch_size=31: must be between 1 and 30, the size of the feature maps"),
    ("inverter_checkpoint_every", "train_inverter", TRAIN_INVERTER + ["--checkpoint_every=0"],
     2, "--checkpoint_every=0"),
    ("inverter_log_every", "train_inverter", TRAIN_INVERTER + ["--log_every=0"], 2,
     "--log_every=0"),
    ("inverter_val_every", "train_inverter", TRAIN_INVERTER + ["--val_every=-1"], 2,
     "--val_every=-1"),
    ("inverter_lr_nan", "train_inverter", TRAIN_INVERTER + ["--lr=nan"], 2,
     "--lr=nan: must be a finite"),
    ("inverter_batch_zero", "train_inverter", TRAIN_INVERTER + ["--batch_size=0"], 2,
     "--batch_size=0"),
    ("inverter_num_val", "train_inverter", TRAIN_INVERTER + ["--num_val=-1"], 2,
     "--num_val=-1"),
    ("inverter_hidden_zero", "train_inverter", TRAIN_INVERTER + ["--hidden=0",
                                                                "--output_dir={tmp}/inv2"], 2,
     "hidden=0: hidden channels must be >= 1"),
    ("inverter_blocks_order", "train_inverter", TRAIN_INVERTER + ["--blocks=pool2,pool1",
                                                                 "--output_dir={tmp}/inv2"], 2,
     "not in network order"),
]


@pytest.fixture(scope="module")
def run():
    with BinaryRunner() as runner:
        yield runner


@pytest.fixture(scope="module")
def fix(run, tmp_path_factory):
    """The fixture folder, with a finished prior run and a finished joint inverter run."""
    tmp = str(tmp_path_factory.mktemp("bad_inputs"))
    rc, _, err = run.code(_FIXTURES.replace("TMP", repr(tmp)))
    assert rc == 0, err
    subs = {"tmp": tmp}
    for script, args in (("train_prior", TRAIN_PRIOR), ("train_inverter", TRAIN_INVERTER)):
        rc, out, err = run(f"bin/{script}.py", [a.format(**subs) for a in args])
        assert rc == 0, out + err
    return tmp


def _fill(text, tmp):
    return text.format(tmp=tmp, tiny=f"{tmp}/tiny.keras", bad_keras=f"{tmp}/bad.keras")


@pytest.mark.parametrize("kind,args,status,fragment", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input(run, fix, kind, args, status, fragment):
    if kind == "api":
        rc, out, err = run.code(_fill(args, fix))
    else:
        rc, out, err = run(f"bin/{kind}.py", [_fill(a, fix) for a in args])
    assert rc == status, out + err
    assert _fill(fragment, fix) in (out if status == 0 else err), out + err
    if status == 2:
        lines = [l for l in err.splitlines() if l.startswith("error: ")]
        assert len(lines) == 1, err          # printed once
        assert lines[0] == err.splitlines()[-1]
        assert ("Traceback" in err) == ("--debug" in args), err


def test_fresh_restarts_and_same_settings_resume(run, fix):
    args = [_fill(a, fix) for a in TRAIN_PRIOR]
    # Same settings: resumes the finished run (no error, nothing retrained).
    rc, out, err = run("bin/train_prior.py", args)
    assert rc == 0, out + err
    assert "resumed from" in out + err
    rc, out, err = run("bin/train_prior.py", args + ["--seed=1", "--fresh"])
    assert rc == 0, out + err
    assert "--fresh: deleted the earlier run" in out + err and "resumed" not in out + err
    with open(f"{fix}/prior_ckpt/run_settings.json") as f:
        assert json.load(f)["seed"] == 1
    with open(f"{fix}/prior.json") as f:
        record = json.load(f)
    # Recorded paths are never this machine's absolute ones.
    assert record["settings"]["checkpoint_dir"] == "prior_ckpt"
    assert not os.path.isabs(record["environment"]["argv"][0])


def test_shipped_checkpoints_record_no_absolute_paths():
    pattern = re.compile(r"(?<![\w.~])/(tmp|work|home|root|Users)/")
    root = os.path.join(REPO, "checkpoints")
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith(".json"):
                text = open(path).read()
            elif name.endswith(".keras"):
                text = zipfile.ZipFile(path).read("config.json").decode()
            else:
                continue
            assert not pattern.search(text), path


def test_fresh_interpreter_is_quiet_and_exits_2():
    """A real fresh process: no CUDA/absl start-up noise, one line, status 2."""
    env = dict(os.environ, PYTHONPATH=REPO)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    p = subprocess.run([sys.executable, "bin/classify.py", "--classifier=nonexistent.keras",
                        "--images=chelsea"], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 2, p.stderr
    assert p.stderr == "error: Keras model file 'nonexistent.keras' does not exist.\n"
