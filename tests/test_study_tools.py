"""The study's report tools in bench/: the rerun check (reproducibility of cells rerun from
scratch), the thesis's AlexNet table, on comparison JSONs made here, and the inverter
study's publishing."""
import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))
LAYERS = ["conv1/lin", "conv2/lin", "conv3/lin", "conv4/lin", "conv5/lin"]


def _study():
    rng = np.random.default_rng(0)
    cells = {}
    for i, layer in enumerate(LAYERS):
        for method in ("M&V 2016", "+ image FoE"):
            cells[f"{layer} | {method}"] = {
                "layer": layer, "method": method, "spec": {"preset": "mv2016"},
                "seconds": 10.0, "record": {"steps_run": 3500, "converged": i < 2},
                "per_image": {"ssim": rng.uniform(0, 1, 3).tolist(),
                              "mse": rng.uniform(500, 3000, 3).tolist(),
                              "feature_error": rng.uniform(0, 0.3, 3).tolist()}}
    return {"settings": {"classifier": {"classifier": "alexnet", "weights": "random seed=0"},
                         "steps": 3500, "seed": 0, "images": ["a", "b", "c"]},
            "cells": cells}


def _run(script, args):
    return subprocess.run([sys.executable, os.path.join(REPO, "bench", script)] + args,
                          capture_output=True, text=True, cwd=REPO, timeout=120)


def test_rerun_check_finds_equal_and_changed_cells():
    import rerun_check
    study = _study()
    rerun = {"settings": study["settings"],
             "cells": {k: copy.deepcopy(study["cells"][k])
                       for k in ("conv1/lin | M&V 2016", "conv5/lin | + image FoE")}}
    rows = rerun_check.check(study, rerun, atol=1e-6)
    assert {r[0] for r in rows} == {"conv1/lin | M&V 2016", "conv5/lin | + image FoE"}
    assert all(r[6] and r[5] == 0 for r in rows)
    rerun["cells"]["conv5/lin | + image FoE"]["per_image"]["ssim"][1] += 1e-3
    rows = rerun_check.check(study, rerun, atol=1e-6)
    bad = [(r[0], r[2]) for r in rows if not r[6]]
    assert bad == [("conv5/lin | + image FoE", "ssim")]
    assert max(r[5] for r in rows) == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="steps"):
        rerun_check.check(study, dict(rerun, settings=dict(study["settings"], steps=50)), 1e-6)
    with pytest.raises(ValueError, match="no cell"):
        rerun_check.check(study, {"settings": study["settings"], "cells": {}}, 1e-6)


def test_rerun_check_binary(tmp_path):
    study = _study()
    a, b = tmp_path / "study.json", tmp_path / "rerun.json"
    a.write_text(json.dumps(study))
    b.write_text(json.dumps({"settings": study["settings"],
                             "cells": {"conv2/lin | M&V 2016":
                                       study["cells"]["conv2/lin | M&V 2016"]}}))
    res = _run("rerun_check.py", [f"--study={a}", f"--rerun={b}",
                                  f"--output={tmp_path / 'r.md'}"])
    assert res.returncode == 0, res.stderr[-2000:]
    assert "1 of 1 cells reproduced exactly" in (tmp_path / "r.md").read_text()
    res = _run("rerun_check.py", [f"--study={a}", f"--rerun={tmp_path / 'none.json'}"])
    assert res.returncode == 2 and "does not exist" in res.stderr
    assert "Traceback" not in res.stderr


def test_thesis_alexnet_table(tmp_path):
    study = _study()
    path = tmp_path / "alexnet.json"
    path.write_text(json.dumps(study))
    out = tmp_path / "table.md"
    res = _run("thesis_alexnet_table.py", [f"--results={path}", f"--output={out}",
                                           "--foe=+ image FoE"])
    assert res.returncode == 0, res.stderr[-2000:]
    md = out.read_text()
    # Our cells' means, the thesis's figures beside them, and – for the missing inverter.
    mse_conv3 = np.mean(study["cells"]["conv3/lin | M&V 2016"]["per_image"]["mse"])
    assert f"{mse_conv3:.0f}" in md
    assert "| 869 |" in md and "| 0.22 |" in md   # thesis M&V 2016 conv1 MSE, conv5 NMSE
    assert "–" in md and "†" in md          # no inverter cells; unconverged conv3-conv5


def test_fmap_dae_vs_wiener(tmp_path):
    """An untrained DAE (r ≈ x) gains ~0 dB; per-channel shrinkage gains what the formula
    says on the same noisy maps."""
    import keras
    from tfrestore.priors.dae import DenoisingAutoencoder
    from tfrestore.priors.recipe import save_prior
    keras.utils.set_random_seed(1)
    inp = keras.Input((24, 24, 3))
    out = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inp)
    clf_path = str(tmp_path / "tiny.keras")
    keras.Model(inp, out).save(clf_path)
    dae = DenoisingAutoencoder(4, 0.5, features=4, dilations=(1,), seed=0)
    dae.set_statistics([0.0] * 4, [30.0] * 4)
    dae_path = str(tmp_path / "dae.keras")
    save_prior(dae, dae_path)
    out_md = tmp_path / "w.md"
    res = _run("fmap_dae_vs_wiener.py", [f"--daes={clf_path}:imagenet:c1:{dae_path}",
                                         "--images=chelsea,coffee", "--limit=2",
                                         f"--output={out_md}"])
    assert res.returncode == 0, res.stderr[-2000:]
    row = [l for l in out_md.read_text().splitlines() if l.startswith("| ") and "c1" in l][0]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == "no"                             # no linear skip
    noisy, wiener, gauss, dae_mse = float(cells[4]), *(float(c.split()[0]) for c in cells[5:8])
    assert abs(noisy - 0.25) < 0.01                     # σ = 0.5 noise
    assert wiener < noisy                               # shrinkage always helps
    assert gauss <= wiener * 1.001                      # the oracle fit includes it
    assert abs(dae_mse - noisy) / noisy < 0.05          # r(x) ≈ x: no gain
    bad = _run("fmap_dae_vs_wiener.py", ["--daes=only:three:parts"])
    assert bad.returncode == 2 and "NETWORK:WEIGHTS:LAYER" in bad.stderr


def test_inverter_publish_keeps_an_unchanged_inverter(tmp_path):
    """publish re-saves an inverter only when its training state changed: a re-save changes
    the file's bytes, and so the SHA-256 that keys the study cells using it."""
    import inverter_study
    modules = [{"module": 0, "step": 2200, "converged": True, "command": "python a --lr=1e-4"}]
    (tmp_path / "inv.json").write_text(json.dumps({"modules": modules}))
    respelled = [dict(modules[0], command="python a --seed=0 --lr=1e-4")]
    assert not inverter_study._already_shipped(str(tmp_path), "inv", {"modules": respelled})
    (tmp_path / "inv.keras").write_bytes(b"weights")
    assert inverter_study._already_shipped(str(tmp_path), "inv", {"modules": respelled})
    trained_on = [dict(modules[0], step=2300)]
    assert not inverter_study._already_shipped(str(tmp_path), "inv", {"modules": trained_on})


def test_inverter_publish_keeps_shipped_inverters_whose_runs_are_absent(tmp_path):
    """publish on a machine without an inverter's training runs keeps its row and curves
    (from the shipped record) instead of dropping them from results/inverters/."""
    import inverter_study
    ckpt, results = tmp_path / "ckpt", tmp_path / "results"
    ckpt.mkdir()
    curve = [{"step": 100, "time_s": 10.0, "lr": 3e-4, "val_total": 0.5, "criterion": 0.5},
             {"step": 200, "time_s": 20.0, "lr": 3e-4, "val_total": 0.4, "criterion": 0.4}]
    layer = "expanded_conv_3_add"
    held_out = {layer: {"image_mse": 1234.0, "psnr": 17.5, "ssim": 0.624, "feature_nmse": 0.05,
                        "solo_module_nmse": 0.04}}
    name = f"mobilenet_v2_{layer}_stacked"
    (ckpt / f"{name}.json").write_text(json.dumps({
        "inverter": name, "mode": "stacked", "converged": True, "steps": 5100,
        "train_seconds": 9000.0, "held_out_images": ["a.JPEG"], "held_out": held_out,
        "valid_from": [layer], "modules": [{"module": 1, "job": "mobilenet_v2_module1",
                                            "curve": curve}]}))
    inverter_study.publish(str(tmp_path / "no_runs"), str(ckpt), str(results), False)
    md = (results / "inverters.md").read_text()
    row = next(l for l in md.splitlines() if l.startswith(f"| {name} |"))
    assert [c.strip() for c in row.strip("|").split("|")][2:5] == ["1234", "17.50", "0.624"]
    saved = json.loads((results / "inverters.json").read_text())
    assert saved["curves"]["mobilenet_v2_module1"][-1]["val_total"] == 0.4
    assert list(saved["inverters"]) == [name]


def test_inverter_publish_takes_a_module_without_its_run_from_a_shipped_inverter(tmp_path):
    """A module whose training run is gone (a sitting's runs folder does not outlive it)
    comes, weights and record, from the shipped inverter whose record names its job: the
    next stack chains it with a module trained now. A job no shipped inverter names: None."""
    import inverter_study
    from test_learned_inversion import tiny_classifier
    from tfrestore.inverters import build_stack, save_stack
    clf = tiny_classifier()
    factory = lambda seed=0: build_stack(clf, blocks=["p1", "c2"], seed=seed)  # noqa: E731
    trained = factory(seed=7)
    record = {"module": 1, "job": "tiny_module1", "step": 900, "converged": True,
              "seconds": 12.0, "curve": [{"step": 100, "val_total": 0.5}]}
    save_stack(trained, str(tmp_path / "tiny_p1_stacked.keras"))
    (tmp_path / "tiny_p1_stacked.json").write_text(json.dumps(
        {"inverter": "tiny_p1_stacked", "mode": "stacked", "modules": [record]}))
    stack, got = inverter_study._shipped_module(str(tmp_path), "tiny_module1", factory)
    assert got == {k: v for k, v in record.items() if k != "module"}
    for a, b in zip(stack.inverse_modules[0].get_weights(),
                    trained.inverse_modules[0].get_weights()):
        np.testing.assert_array_equal(a, b)
    # module 2 was not in the record: left as the factory made it
    for a, b in zip(stack.inverse_modules[1].get_weights(),
                    factory().inverse_modules[1].get_weights()):
        np.testing.assert_array_equal(a, b)
    assert inverter_study._shipped_module(str(tmp_path), "tiny_module2", factory) is None
    assert inverter_study._shipped_module(str(tmp_path / "none"), "tiny_module1", factory) is None


def test_inverter_study_real_weights_jobs_run_only_when_named(tmp_path):
    """The real-weights AlexNet jobs (the thesis's own inverters) need bvlc_alexnet.npy: the
    plan lists them with the file given, but only --only runs them; patterns select."""
    npy = str(tmp_path / "bvlc_alexnet.npy")
    res = _run("inverter_study.py", ["--action=list", f"--runs={tmp_path}",
                                     f"--alexnet_imagenet_weights={npy}"])
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.splitlines()
    head = lines.index("alexnet_imagenet_module3: not started (run only when named: --only)")
    assert f"--weights={npy} " in lines[head + 1] and "--module=conv3/lin" in lines[head + 1]
    assert "alexnet_random_module3: not started" in lines
    # Nothing matches: refused before anything runs (one line, status 2).
    res = _run("inverter_study.py", ["--action=train", f"--runs={tmp_path}",
                                     "--only=alexnet_real_*"])
    assert res.returncode == 2 and "error: --only: no job matches ['alexnet_real_*']" in res.stderr
    res = _run("inverter_study.py", ["--action=list", "--alexnet_imagenet_weights=random"])
    assert res.returncode == 2 and "those are the alexnet_random_* jobs" in res.stderr
    # A pattern selects exactly its jobs; the default leaves the real-weights ones out.
    code = ("import sys; sys.argv = ['x'] + sys.argv[1:]; import inverter_study as s; "
            "s.FLAGS(sys.argv); print(','.join(j['name'] for j in s._selected()))")
    for only, want in ((["--only=alexnet_imagenet_*"],
                        [f"alexnet_imagenet_module{i}" for i in range(1, 6)]),
                       ([], None)):
        res = subprocess.run([sys.executable, "-c", code] + only, capture_output=True,
                             text=True, cwd=os.path.join(REPO, "bench"), timeout=120)
        assert res.returncode == 0, res.stderr[-2000:]
        names = res.stdout.strip().split(",")
        if want:
            assert names == want
        else:
            assert "alexnet_random_module1" in names and "mobilenet_v2_module1" in names
            assert not any(n.startswith("alexnet_imagenet") for n in names)


def test_real_weights_config_names_what_the_inverter_study_ships():
    """results/study/alexnet_imagenet_config.json (the thesis's table with the real weights)
    points at the inverters `inverter_study.py --only='alexnet_imagenet_*'` publishes, and
    its FoE weights are the random-weight study's (searched there; offline here)."""
    import inverter_study
    from tfrestore.inversion.methods import methods_from_config
    with open(os.path.join(REPO, "results", "study", "alexnet_imagenet_config.json")) as f:
        real = json.load(f)
    with open(os.path.join(REPO, "results", "study", "alexnet_random_config.json")) as f:
        random = json.load(f)
    assert real["classifier"] == "alexnet" and real["weights"] == "imagenet"
    assert real["layers"] == LAYERS and real["overrides"] == random["overrides"]
    methods = {m.name: m for m in methods_from_config(real["methods"], real.get("overrides"))}
    assert list(methods) == ["M&V 2016", "+ image FoE", "inverting network (stacked)"]
    shipped = {name for name, *_ in inverter_study._inverters()}
    for layer, path in methods["inverting network (stacked)"].inverter.items():
        name = os.path.splitext(os.path.basename(path))[0]
        assert name in shipped and name == f"alexnet_imagenet_{layer.split('/')[0]}_stacked"
    for name in ("M&V 2016", "+ image FoE"):
        assert real["methods"][name] == random["methods"][name]


def _search_bests(args):
    return _run("search_bests.py", args)


def test_search_bests_committed_mobilenet_weights_are_the_searches_bests():
    """Every prior weight of the MobileNetV2 study config is the best of its committed
    converged search at that layer (a hand-edited weight would show as DIFFERS, status 1)."""
    res = _search_bests(["--config=results/study/mobilenet_v2_config.json"])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    rows = [l for l in res.stdout.splitlines() if l.startswith("| +")]
    assert len(rows) >= 20 and all(r.split("|")[-2].strip().startswith("agrees")
                                   for r in rows), rows


def test_search_bests_pools_interpolates_flags_edges_and_writes(tmp_path):
    """Synthetic searches: two outputs of one group pool; the best is flagged when it lies
    at the grid's edge; a layer between two searched ones takes their geometric mean; a
    config weight other than the best is DIFFERS (status 1) until --write sets them."""
    with open(os.path.join(REPO, "results", "search", "converged", "mnv2_foe_image.json")) as f:
        record = json.load(f)["settings"]["classifier"]
    prior = "checkpoints/foe_8x8x3_512.keras@image"
    over = {"converge_rtol": 0.001, "converge_window": 100, "prior_start": 0.25}

    def search(name, cells, fixed=(), searched=prior):
        out = {"settings": {"priors": [searched], "fixed_priors": list(fixed), "overrides": over,
                            "classifier": record, "images": ["a.JPEG", "b.JPEG"]},
               "cells": {f"{layer} | w={w:g}": {
                   "layer": layer, "method": f"w={w:g}",
                   "spec": {"priors": {"*": [f"{prior}:{w:g}"]} if w else {}},
                   "per_image": {"ssim": ssim}} for layer, w, ssim in cells}}
        (tmp_path / name).write_text(json.dumps(out))
    search("s1.json", [("Conv2d_0_0", 0.0, [0.5, 0.5]), ("Conv2d_0_0", 1e-6, [0.6, 0.62]),
                       ("expanded_conv_5_add", 1e-5, [0.4, 0.4])])
    search("s1_ext.json", [("Conv2d_0_0", 1e-5, [0.55, 0.55]),
                           ("expanded_conv_5_add", 1e-4, [0.5, 0.5])])
    # another prior's search on the same images lends its no-prior cell to _5_add
    search("s1_ica.json", [("expanded_conv_5_add", 0.0, [0.7, 0.7])],
           searched="checkpoints/ica_8x8x3_512.keras@image")
    # searched beside another prior the config's method does not hold: not its search
    search("s1_fixed.json", [("Conv2d_0_0", 3e-6, [0.9, 0.9])],
           fixed=["checkpoints/ica_8x8x3_512.keras@image:1e-5"])
    layers = ["Conv2d_0_0", "expanded_conv_3_add", "expanded_conv_5_add"]
    config = {"classifier": "mobilenet_v2_tflite", "layers": layers,
              "overrides": {"converge_rtol": 0.001, "converge_window": 100},
              "methods": {"M&V 2016": {"preset": "mv2016"},
                          "+ FoE": {"preset": "mv2016", "overrides": {"prior_start": 0.25},
                                    "priors": {"*": [f"{prior}:1e-6"]}}}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    args = [f"--config={path}", f"--searches={tmp_path}/s1*.json"]
    res = _search_bests(args)
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-2000:]
    rows = {l.split("|")[2].strip(): [c.strip() for c in l.strip("|").split("|")]
            for l in res.stdout.splitlines() if l.startswith("| + FoE")}
    assert rows["Conv2d_0_0"][3:] == ["0: 0.5000, 1e-06: 0.6100, 1e-05: 0.5500", "1e-06",
                                      "yes", "1e-06", "agrees"]
    assert rows["expanded_conv_5_add"][3:] == ["0: 0.7000, 1e-05: 0.4000, 0.0001: 0.5000",
                                               "0.0001", "**no (grid edge)**", "1e-06",
                                               "DIFFERS; **no prior is better**"]
    assert rows["expanded_conv_3_add"][4:] == ["1e-05", "–", "1e-06", "interpolated, DIFFERS"]
    res = _search_bests(args + ["--write"])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    priors = json.loads(path.read_text())["methods"]["+ FoE"]["priors"]
    assert priors == {"*": [f"{prior}:1e-6"], "expanded_conv_3_add": [f"{prior}:1e-5"],
                      "expanded_conv_5_add": [f"{prior}:0.0001"]}
    assert _search_bests(args).returncode == 0
