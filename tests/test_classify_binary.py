"""bin/classify.py end to end on a small saved Keras classifier."""
import json
import os
import subprocess
import sys

import keras
import numpy as np

from conftest import REPO


def run(*args):
    return subprocess.run([sys.executable, os.path.join(REPO, "bin", "classify.py"), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=300)


def test_json_output_and_errors(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((24, 24, 3)), keras.layers.Conv2D(4, 3),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(7, activation="softmax")])
    path = str(tmp_path / "tiny.keras")
    model.save(path)
    res = run(f"--classifier={path}", "--images=chelsea,coffee", "--top_k=3", "--json",
              "--preprocessing=tf")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert [o["path"] for o in out] == ["skimage:chelsea", "skimage:coffee"]
    scores = [t["score"] for t in out[0]["top_k"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    assert all(isinstance(t["index"], int) and 0 <= t["index"] < 7 for t in out[0]["top_k"])
    # the binary's answer is the model's answer
    from tfrestore.data import load_images
    x = load_images("chelsea", 24).images / 127.5 - 1.0
    assert out[0]["top_k"][0]["index"] == int(np.argmax(model(x)[0]))

    bad = run(f"--classifier={path}", "--images=/no/such/file.png")
    assert bad.returncode != 0 and "/no/such/file.png" in bad.stderr
    bad = run("--classifier=vgg16", "--weights=/no/such/weights.h5", "--images=chelsea")
    assert bad.returncode != 0 and "does not exist" in bad.stderr
