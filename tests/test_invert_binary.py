"""bin/invert.py end to end (random weights, tiny images, few steps)."""
import json
import os
import subprocess
import sys

import numpy as np

from conftest import REPO


def _run(args, env_steps="6"):
    env = dict(os.environ, TFRESTORE_MAX_STEPS=env_steps, CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, os.path.join(REPO, "bin", "invert.py")] + args,
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)


def test_invert_writes_every_output(tmp_path):
    import skimage.data
    from tfrestore.io import save_png
    img = tmp_path / "rocket.png"
    save_png(str(img), skimage.data.rocket()[::8, ::8])
    flagfile = tmp_path / "flags.txt"
    flagfile.write_text("--weights=random\n--input_size=40\n--tv_weight=2.0\n")
    out = tmp_path / "run"
    p = _run([f"--flagfile={flagfile}", "--classifier=vgg16", "--layer=conv2_1/lin",
              f"--images={img},coffee", "--steps=50", "--seed=3", "--log_every=2",
              "--perceptual_network=none", f"--output_dir={out}"])
    assert p.returncode == 0, p.stderr[-3000:]
    assert "step 6/6" in p.stdout and "left" in p.stdout
    rec = json.loads((out / "metrics.json").read_text())
    s = rec["settings"]
    assert s["seed"] == 3 and s["steps_run"] == 6 and s["tv_weight"] == 2.0
    assert s["layer"] == "conv2_1/lin" and s["classifier"] == "vgg16"
    assert "random" in s["weights"] and s["environment"]["tensorflow"]
    assert len(rec["images"]) == 2
    for row in rec["images"]:
        for k in ("mse", "psnr", "ssim", "feature_error"):
            assert np.isfinite(row[k])
        assert (out / row["reconstruction"]).stat().st_size > 0
        assert (out / row["figure"]).stat().st_size > 0
    arrays = np.load(out / "arrays.npz")
    assert arrays["reconstructions"].shape == arrays["targets"].shape == (2, 40, 40, 3)
    from tfrestore.plotting.curves import read_scalars
    scalars = read_scalars(str(out / "tensorboard"))
    assert "loss/total" in scalars and "loss/tv" in scalars and "metrics/psnr" in scalars
    assert len(scalars["loss/total"][0]) == 3  # steps 2, 4, 6


def test_misspelt_layer_lists_valid_names(tmp_path):
    p = _run(["--classifier=vgg16", "--weights=random", "--input_size=32",
              "--layer=conv3_4", f"--output_dir={tmp_path / 'x'}"])
    assert p.returncode != 0
    assert "conv3_4" in p.stderr and "Valid layers" in p.stderr and "conv3_3" in p.stderr
    assert not (tmp_path / "x" / "metrics.json").exists()
