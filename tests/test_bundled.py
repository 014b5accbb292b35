"""The ImageNet MobileNetV2 bundled as package data: short name, file, labels, weights
argument, agreement with the TFLite interpreter on real photographs, and the binaries'
default classifier. Nothing here needs ../shared."""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import tensorflow as tf

from tfrestore.classifiers import (DEFAULT_CLASSIFIER, WeightsError, available_classifiers,
                                   imagenet_labels, load_classifier)
from tfrestore.classifiers.bundled import (BUNDLED, bundled_labels, bundled_path,
                                           load_bundled, sha256)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "mobilenet_v2_tflite"


@pytest.fixture(scope="module")
def clf():
    return load_classifier(NAME)


@pytest.fixture(scope="module")
def photos():
    from tfrestore.data import load_images
    return load_images(["chelsea", "coffee", "rocket"], 224)


def test_short_name_is_the_default_and_listed():
    assert DEFAULT_CLASSIFIER == NAME and NAME in available_classifiers()


def test_bundled_file_is_the_published_one():
    path = bundled_path(NAME)
    # Inside the installed package, not in ../shared.
    assert os.path.dirname(path) == os.path.join(REPO, "tfrestore", "classifiers", "bundled") \
        or "site-packages" in path
    assert os.path.getsize(path) == 4070174 and sha256(path) == BUNDLED[NAME][2]
    licence = os.path.join(os.path.dirname(path), "LICENSE")
    with open(licence) as f:
        assert "Apache License" in f.read(200)


def test_labels_are_background_plus_imagenet(clf):
    labels = bundled_labels(NAME)
    assert len(labels) == 1001 and labels[0] == "background"
    assert labels[1:] == imagenet_labels()          # the Keras-order list shipped separately
    assert clf.labels == labels and clf.output_shape("softmax") == (1001,)


def _interpreter():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the interpreter's deprecation notice
        it = tf.lite.Interpreter(model_path=bundled_path(NAME))
    it.allocate_tensors()
    return it


def test_loads_by_short_name_with_the_file_weights(clf):
    assert clf.name == "tf2_mobilenet_v2_1.0_224_ptq"   # same name as any copy of the file
    assert str(clf.weights) == bundled_path(NAME) and clf.input_shape == (224, 224, 3)
    # The uint8 input means x = (rgb - zero_point) * scale, read by the interpreter.
    scale, zp = _interpreter().get_input_details()[0]["quantization"]
    rgb = np.array([0.0, 128.0, 255.0], np.float32)
    x = clf.preprocessing(rgb.reshape(1, 1, 1, 3)).numpy().ravel()
    np.testing.assert_allclose(x, (rgb - zp) * scale, rtol=1e-5, atol=1e-6)
    assert -1.01 < x[0] < -0.99 and 0.99 < x[2] < 1.01


@pytest.mark.parametrize("weights", ["random", "/no/such/weights.h5"])
def test_weights_other_than_the_files_are_an_error(weights):
    with pytest.raises(WeightsError, match="bundled|does not exist"):
        load_classifier(NAME, weights=weights)
    with pytest.raises(WeightsError, match="random is not available"):
        load_bundled(NAME, weights="random")
    # The file itself, or "imagenet", are the same weights.
    assert load_bundled(NAME, weights=bundled_path(NAME)).name == "tf2_mobilenet_v2_1.0_224_ptq"


def test_input_size_other_than_the_files_is_an_error():
    assert load_classifier(NAME, input_size=224).input_size == (224, 224)
    with pytest.raises(ValueError, match="224x224 images only"):
        load_classifier(NAME, input_size=64)


def test_agrees_with_the_tflite_interpreter_on_photographs(clf, photos):
    """Independent reference: TensorFlow's TFLite interpreter on the same uint8 pixels."""
    images = np.round(photos.images)
    it = _interpreter()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    ours = clf.top_k(images, k=1)
    for k in range(len(images)):
        it.set_tensor(inp["index"], images[k:k + 1].astype(np.uint8))
        it.invoke()
        ref = it.get_tensor(out["index"])[0]
        assert ours[k][0][0] == int(np.argmax(ref)), (photos.paths[k], ours[k], np.argmax(ref))
    labels = [r[0][1] for r in ours]
    assert labels[0] in ("Egyptian cat", "tabby, tabby cat", "tiger cat")
    assert labels[1] == "espresso" and "missile" in labels[2]


def test_addressable_layers(clf, photos):
    add, lin = clf.feature_model(["expanded_conv_3_add", "Conv2d_18_1/lin"])(photos.images[:1])
    assert add.shape == (1, 56, 56, 24) and lin.shape == (1, 7, 7, 1280)
    assert float(np.min(lin)) < 0 < float(np.max(lin))  # pre-activation, not clipped


def test_classify_binary_defaults_to_the_bundled_network(tmp_path):
    """The README's first command: no --classifier, no --weights, offline."""
    env = dict(os.environ, PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES="")
    res = subprocess.run([sys.executable, os.path.join(REPO, "bin", "classify.py"),
                          "--images=coffee", "--top_k=1", "--json"],
                         capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout[res.stdout.index("["):])
    assert out[0]["top_k"][0]["label"] == "espresso" and out[0]["top_k"][0]["index"] == 968
    bad = subprocess.run([sys.executable, os.path.join(REPO, "bin", "classify.py"),
                          "--images=coffee", "--weights=random"],
                         capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert bad.returncode == 2 and "random is not available" in bad.stderr


def test_every_data_file_of_the_package_is_declared(monkeypatch):
    """`pip install .` (not editable) copies only declared package data: every non-Python
    file inside tfrestore/ must match setup.py's package_data for its package."""
    import fnmatch
    import setuptools
    captured = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kw: captured.update(kw))
    with open(os.path.join(REPO, "setup.py")) as f:
        exec(compile(f.read(), "setup.py", "exec"), {"__name__": "__main__"})
    declared = captured["package_data"]
    missing = []
    for folder, dirs, files in os.walk(os.path.join(REPO, "tfrestore")):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        package = os.path.relpath(folder, REPO).replace(os.sep, ".")
        for name in files:
            if name.endswith(".py") or name.startswith("."):
                continue
            if not any(fnmatch.fnmatch(name, pat) for pat in declared.get(package, [])):
                missing.append(os.path.join(package, name))
    assert missing == []
    assert "tf2_mobilenet_v2_1.0_224_ptq.tflite" in os.listdir(
        os.path.dirname(bundled_path(NAME)))


def test_readme_figure_command(tmp_path):
    """bench/readme_figure.py end to end (2 steps, 2 depths), and its resume."""
    env = dict(os.environ, PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES="", TFRESTORE_MAX_STEPS="2")
    cmd = [sys.executable, os.path.join(REPO, "bench", "readme_figure.py"),
           "--layers=Conv2d_0_0,expanded_conv_3_add", f"--output={tmp_path / 'fig.png'}",
           f"--work_dir={tmp_path / 'work'}"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr[-2000:]
    meta = json.loads((tmp_path / "fig.json").read_text())
    assert [d["layer"] for d in meta["depths"]] == ["Conv2d_0_0", "expanded_conv_3_add"]
    assert all(d["steps"] == 2 for d in meta["depths"]) and meta["steps"] == 400
    assert meta["depths"][1]["shape"] == [56, 56, 24]
    assert (tmp_path / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert again.returncode == 0 and again.stdout.count("resumed from") == 2
    assert json.loads((tmp_path / "fig.json").read_text())["depths"] == meta["depths"]


def test_recorded_weights_do_not_depend_on_where_the_package_lies(clf, tmp_path, monkeypatch):
    # Records (study settings, checkpoints) must compare equal across clones and worktrees.
    here = clf.describe()["weights"]
    monkeypatch.chdir(tmp_path)
    assert clf.describe()["weights"] == here
    assert not os.path.isabs(here) and here.endswith(".tflite")
