"""bin/train_inverter.py end to end, resume, distribution flag, bad input; and
bin/invert.py --method=network/hybrid with the trained inverter."""
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))
from test_inverters import tiny_model  # noqa: E402

PHOTOS = "astronaut,chelsea,coffee,rocket,cat,camera"


@pytest.fixture(scope="module")
def classifier_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("clf") / "tiny.keras")
    tiny_model().save(path)
    return path


def run(script, args, steps=4):
    env = dict(os.environ, TFRESTORE_MAX_STEPS=str(steps), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, os.path.join(REPO, "bin", script)] + args,
                          capture_output=True, text=True, env=env, timeout=300, cwd=REPO)


@pytest.fixture(scope="module")
def trained(classifier_file, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("train"))
    proc = run("train_inverter.py", [f"--classifier={classifier_file}", "--preprocessing=tf",
                                     f"--images={PHOTOS}", "--num_val=2", "--blocks=c2,c3",
                                     "--mode=joint", "--steps=100", "--batch_size=2",
                                     "--log_every=2", "--val_every=2",
                                     "--checkpoint_every=2", f"--output_dir={out}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_train_writes_inverter_and_records(trained):
    out, proc = trained
    import tfrestore  # noqa: F401
    inv = keras.models.load_model(os.path.join(out, "inverter.keras"))
    assert inv.levels == ["input", "c2", "c3"]
    info = json.load(open(os.path.join(out, "train_info.json")))
    assert info["config"]["steps"] == 4 and info["config"]["mode"] == "joint"
    assert len(info["val_images"]) == 2 and not set(info["val_images"]) & set(info["train_images"])
    assert [h["step"] for h in info["history"]] == [2, 4]
    ev = json.load(open(os.path.join(out, "eval.json")))
    assert set(ev) == {"c2", "c3"} and ev["c3"]["image_mse"] > 0
    assert os.listdir(os.path.join(out, "tensorboard")) and "held-out from c3" in proc.stdout


def test_rerun_resumes_from_checkpoint(trained, classifier_file):
    out, _ = trained
    proc = run("train_inverter.py", [f"--classifier={classifier_file}", "--preprocessing=tf",
                                     f"--images={PHOTOS}", "--num_val=2", "--blocks=c2,c3",
                                     "--mode=joint", "--steps=100", "--batch_size=2",
                                     "--log_every=2", f"--output_dir={out}"], steps=6)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Resuming from step 4" in proc.stdout
    info = json.load(open(os.path.join(out, "train_info.json")))
    assert [h["step"] for h in info["history"]] == [2, 4, 6]  # history resumes too


def test_mirrored_flag_two_cpu_replicas(classifier_file, tmp_path):
    proc = run("train_inverter.py", [f"--classifier={classifier_file}", "--preprocessing=tf",
                                     f"--images={PHOTOS}", "--num_val=2", "--blocks=c2,c3",
                                     "--mode=solo", "--batch_size=2", "--strategy=mirrored",
                                     "--cpu_replicas=2", f"--output_dir={tmp_path}"], steps=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.load(open(tmp_path / "train_info.json"))["replicas"] == 2


@pytest.mark.parametrize("args, message", [
    (["--images=no_such_folder"], "no_such_folder"),
    (["--blocks=c3,c2"], "network order"),
    (["--init=no_such_inverter.keras"], "--init=no_such_inverter.keras: no such file"),
])
def test_bad_input_exits_nonzero(classifier_file, tmp_path, args, message):
    base = {"--images": f"--images={PHOTOS}", "--blocks": "--blocks=c2,c3"}
    for a in args:
        base[a.split("=")[0]] = a
    proc = run("train_inverter.py", [f"--classifier={classifier_file}", "--preprocessing=tf",
                                     f"--output_dir={tmp_path}"] + list(base.values()))
    assert proc.returncode != 0
    assert message in proc.stderr


def test_init_fine_tunes_a_trained_inverter(trained, classifier_file, tmp_path):
    out, _ = trained
    init = os.path.join(out, "inverter.keras")
    args = [f"--classifier={classifier_file}", "--preprocessing=tf", f"--images={PHOTOS}",
            "--num_val=2", "--mode=end_to_end", "--steps=100", "--batch_size=2",
            f"--output_dir={tmp_path / 'ft'}"]
    proc = run("train_inverter.py", args + ["--blocks=c2,c3", f"--init={init}"], steps=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.load(open(tmp_path / "ft" / "train_info.json"))
    assert info["init"] == init and info["config"]["mode"] == "end_to_end"
    settings = json.load(open(tmp_path / "ft" / "ckpt" / "run_settings.json"))
    assert settings["init"] == init and len(settings["init_sha256"]) == 64
    # Resuming without the same --init is refused, naming it.
    proc = run("train_inverter.py", args + ["--blocks=c2,c3"], steps=3)
    assert proc.returncode == 2 and "init" in proc.stderr
    # An inverter of other blocks cannot start this run: one line, exit 2.
    proc = run("train_inverter.py", [a.replace("/ft", "/other") for a in args]
               + ["--blocks=c3", f"--init={init}"], steps=2)
    assert proc.returncode == 2 and "does not match" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("method", ["network", "hybrid"])
def test_invert_binary_network_and_hybrid(trained, classifier_file, tmp_path, method):
    out, _ = trained
    proc = run("invert.py", [f"--classifier={classifier_file}", "--preprocessing=tf",
                             "--layer=c3", f"--method={method}",
                             f"--inverter={os.path.join(out, 'inverter.keras')}",
                             "--images=astronaut", "--perceptual_network=none",
                             "--figures=false", f"--output_dir={tmp_path}"], steps=3)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.load(open(tmp_path / "metrics.json"))
    assert m["settings"]["method"] == method
    assert m["settings"]["inverter"]["layer"] == "c3"
    assert set(m["mean"]) >= {"mse", "psnr", "ssim", "feature_error"}
    rec = np.load(tmp_path / "arrays.npz")["reconstructions"]
    assert rec.shape == (1, 32, 32, 3)


def test_invert_binary_network_needs_inverter(classifier_file, tmp_path):
    proc = run("invert.py", [f"--classifier={classifier_file}", "--layer=c3",
                             "--method=network", "--images=astronaut",
                             f"--output_dir={tmp_path}"])
    assert proc.returncode != 0 and "--inverter" in proc.stderr
