"""Studies sharded by cell (`run_comparison(shard=(I, N))`, `--shard=I/N` of bin/compare.py
and bin/search_weights.py): N shards writing their own files into one folder merge to the
table of an unsharded run."""
import dataclasses
import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_learned_inversion import save_prior, tiny_classifier  # noqa: E402

from tfrestore.inversion.comparison import (markdown_table, missing_cells, parse_shard,
                                            run_comparison, shard_path)
from tfrestore.inversion.methods import Method


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, (2, 24, 24, 3)).astype(np.float32)


METHODS = [Method(name="mv2016"), Method(name="tv0", overrides={"tv_weight": 0.0})]
LAYERS = ["c1", "c2"]
NAMES = [m.name for m in METHODS]


def test_two_shards_merge_to_the_unsharded_table(tmp_path, images):
    clf = tiny_classifier()
    kw = dict(steps=4, seed=2, log=lambda s: None)
    whole = run_comparison(clf, LAYERS, METHODS, images, ["a", "b"],
                           str(tmp_path / "whole.json"), **kw)
    path = str(tmp_path / "sharded.json")
    first = run_comparison(clf, LAYERS, METHODS, images, ["a", "b"], path, shard=(0, 2), **kw)
    # Shard 0 ran cells 0 and 2 of the layer-major order, into its own file only.
    assert sorted(first["cells"]) == ["c1 | mv2016", "c2 | mv2016"]
    assert not os.path.exists(path)
    assert missing_cells(first, LAYERS, METHODS) == ["c1 | tv0", "c2 | tv0"]
    second = run_comparison(clf, LAYERS, METHODS, images, ["a", "b"], path, shard=(1, 2), **kw)
    # The last shard merged every shard's cells into the main file.
    assert not missing_cells(second, LAYERS, METHODS)
    merged = json.load(open(path))
    assert sorted(merged["cells"]) == sorted(whole["cells"])
    assert json.load(open(shard_path(path, (1, 2))))["cells"].keys() == {"c1 | tv0",
                                                                        "c2 | tv0"}
    for key, cell in whole["cells"].items():
        np.testing.assert_allclose(merged["cells"][key]["per_image"]["ssim"],
                                   cell["per_image"]["ssim"], rtol=1e-5, err_msg=key)
    assert _untimed(markdown_table(merged, LAYERS, NAMES)) == \
        _untimed(markdown_table(whole, LAYERS, NAMES))
    assert set(np.load(str(tmp_path / "sharded_examples.npz")).files) == set(whole["cells"])

    class Exploding(Method):
        def reconstruct(self, *a, **k):
            raise AssertionError("a cell done by a shard was recomputed")
    again = run_comparison(clf, LAYERS, [Exploding(**dataclasses.asdict(m)) for m in METHODS],
                           images, ["a", "b"], path, **kw)
    assert again["cells"] == merged["cells"]


@pytest.mark.parametrize("text", ["2/2", "1", "a/b", "-1/2", "0/0"])
def test_bad_shard_is_a_one_line_error(text):
    with pytest.raises(ValueError, match="--shard="):
        parse_shard(text)


def test_shard_parsed():
    assert parse_shard("1/3") == (1, 3) and parse_shard(None) is None


def _tiny_study(tmp_path):
    """(classifier path, bin/compare.py flags) of a 2-layer, 2-method study on 2 images."""
    clf = str(tmp_path / "tiny.keras")
    tiny_classifier().model.save(clf)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"classifier": clf, "layers": ["c1", "c2"],
                               "methods": {"mv2016": {}, "tv0": {"overrides":
                                                                 {"tv_weight": 0.0}}}}))
    return clf, [f"--config={cfg}", "--images=chelsea,coffee", "--limit=2", "--steps=3",
                 "--perceptual_network=none"]


def test_binaries_two_shards_equal_unsharded(tmp_path):
    from binary_runner import BinaryRunner
    clf, base = _tiny_study(tmp_path)
    with BinaryRunner(env={"TFRESTORE_MAX_STEPS": "3"}) as run:
        rc, out, err = run("bin/compare.py", base + [f"--output={tmp_path}/whole"])
        assert rc == 0, err[-2000:]
        rc, out, err = run("bin/compare.py", base + [f"--output={tmp_path}/sh", "--shard=1/2"])
        assert rc == 0, err[-2000:]
        assert "Shard 1/2 done; 2 cell(s) of other shards" in out
        assert not os.path.exists(tmp_path / "sh.md")
        assert sorted(json.load(open(tmp_path / "sh.shard-1-of-2.json"))["cells"]) == \
            ["c1 | tv0", "c2 | tv0"]
        rc, out, err = run("bin/compare.py", base + [f"--output={tmp_path}/sh", "--shard=0/2"])
        assert rc == 0, err[-2000:]
        # Another baseline's view of the finished comparison: its .md only, nothing rerun.
        rc, out, err = run("bin/compare.py", base + [f"--output={tmp_path}/view",
                                                     f"--results={tmp_path}/whole.json",
                                                     "--baseline=tv0"])
        assert rc == 0, err[-2000:]
        view = open(tmp_path / "view.md").read()
        assert "ssim vs tv0 |" in view and "ssim vs mv2016 |" not in view
        assert "mv2016 @ c1 |" in view and not os.path.exists(tmp_path / "view.json")
        assert not os.path.exists(tmp_path / "view.png")
        rc, out, err = run("bin/compare.py", base + [f"--output={tmp_path}/view",
                                                     f"--results={tmp_path}/none.json"])
        assert rc == 2 and "--results: no results" in err, err[-2000:]
        # A weight search: 2 cells (baseline and one weight), one per shard.
        prior = save_prior(str(tmp_path / "img.keras"), 3)
        search = [f"--classifier={clf}", "--layer=c2", "--images=chelsea,coffee", "--limit=2",
                  f"--prior={prior}@image", "--grid=1e-2", "--set=tv_weight=0", "--steps=3",
                  "--metric=psnr"]
        rc, out, err = run("bin/search_weights.py", search + [f"--output={tmp_path}/s1"])
        assert rc == 0, err[-2000:]
        for i in (0, 1):
            rc, out, err = run("bin/search_weights.py",
                               search + [f"--output={tmp_path}/s2", f"--shard={i}/2"])
            assert rc == 0, err[-2000:]
            assert os.path.exists(tmp_path / "s2_ranking.json") == (i == 1)
    one = json.load(open(tmp_path / "s1_ranking.json"))
    two = json.load(open(tmp_path / "s2_ranking.json"))
    assert [r["weights"] for r in one["ranking"]] == [r["weights"] for r in two["ranking"]]
    np.testing.assert_allclose([r["psnr"] for r in two["ranking"]],
                               [r["psnr"] for r in one["ranking"]], rtol=1e-5)
    whole = _untimed(open(tmp_path / "whole.md").read().replace(f"{tmp_path}/whole", "OUT"))
    sharded = _untimed(open(tmp_path / "sh.md").read().replace(f"{tmp_path}/sh", "OUT"))
    assert "| tv0 |" in whole and sharded == whole
    assert os.path.getsize(tmp_path / "sh.png") > 1000


def _untimed(table):
    """A comparison table without its seconds (the budget table's times differ by run)."""
    import re
    table = re.sub(r"\d+ s \|", "S |", table)
    # the every-cell table's seconds column (its fourth)
    return re.sub(r"^(\|[^|]+ @ [^|]+\|[^|]+\|[^|]+\| )\d+ \|", r"\1S |", table, flags=re.M)


def test_wide_table_has_the_thesis_form():
    """Rows methods; MSE then feature error per layer; † unconverged, – missing; reference
    rows beneath."""
    from tfrestore.inversion.comparison import wide_table
    cell = lambda mse, fe, conv: {"per_image": {"mse": mse, "feature_error": fe},
                                  "record": {"converged": conv}}
    results = {"cells": {"a | M&V": cell([100, 300], [0.1, 0.3], True),
                         "b | M&V": cell([1000, 3000], [0.2, 0.4], False)}}
    table = wide_table(results, ["a", "b"], {"mv": "M&V", "net": "nets"},
                       reference={"paper": {"mse": [1, 2], "feature_error": [0.5, 0.25]}})
    lines = table.splitlines()
    assert lines[0] == "| method | mse a | mse b | feature_error a | feature_error b |"
    assert lines[2] == "| mv | 200 | 2000 † | 0.200 | 0.300 † |"
    assert lines[3] == "| net | – | – | – | – |"
    assert lines[4] == "| paper | 1 | 2 | 0.5 | 0.25 |"


def test_recorded_command_pastes_back_into_a_shell(monkeypatch):
    """The command in a results header splits back into the argv that ran it, even with a
    method name holding spaces and `&` (`--baseline=M&V 2016`)."""
    import shlex
    from tfrestore import cli
    argv = ["bin/compare.py", "--config=c.json", "--baseline=M&V 2016",
            "--methods=+ image FoE,M&V 2016", "--shard=1/3"]
    monkeypatch.setattr(sys, "argv", argv)
    command = cli.command_line()
    assert shlex.split(command) == ["python"] + argv
    assert "'--baseline=M&V 2016'" in command


def test_results_command_drops_shard_and_render_only_in_every_spelling():
    """The reproducing command leaves out --shard and --render_only however they were spelt
    (`--shard 1/3` takes its value with it; a boolean never takes the next item)."""
    from absl import flags
    from tfrestore import cli
    fv = flags.FlagValues()
    flags.DEFINE_string("shard", None, "", flag_values=fv)
    flags.DEFINE_bool("render_only", False, "", flag_values=fv)
    keep = ["--config=c.json", "--baseline=M&V 2016"]
    for spelt in (["--shard=1/3"], ["--shard", "1/3"], ["--render_only"], ["--render_only=false"],
                  ["--norender_only"], ["--shard", "0/2", "--render_only"]):
        assert cli._without_flags(keep[:1] + spelt + keep[1:], ("shard", "render_only"), fv) == keep
    # A flag merely starting like a dropped one stays.
    assert cli._without_flags(["--shards=3", "--render"], ("shard", "render_only"), fv) == [
        "--shards=3", "--render"]
    # A dropped name the binary does not define is left out without taking the next item.
    assert cli._without_flags(["--gone", "--x=1"], ("gone",), fv) == ["--x=1"]


def test_merge_study_adds_separately_run_cells(tmp_path):
    """bench/merge_study.sh: cells run into their own outputs (a job per method) join a
    study's JSON and tables as if run there; its temporary shard files are gone after."""
    import subprocess
    from binary_runner import REPO, BinaryRunner
    _, base = _tiny_study(tmp_path)
    (tmp_path / "job").mkdir()
    with BinaryRunner(env={"TFRESTORE_MAX_STEPS": "3"}) as run:
        for args in ([f"--output={tmp_path}/whole"],
                     [f"--output={tmp_path}/study", "--methods=mv2016"],
                     [f"--output={tmp_path}/job/tv0", "--methods=tv0"]):
            rc, out, err = run("bin/compare.py", base + args)
            assert rc == 0, err[-2000:]

    def merge(*runs):
        return subprocess.run(["bash", os.path.join(REPO, "bench", "merge_study.sh"),
                               str(tmp_path / "study"), *runs, "--", *base],
                              capture_output=True, text=True, timeout=600,
                              env=dict(os.environ, TFRESTORE_MAX_STEPS="3"))
    done = merge(str(tmp_path / "job" / "tv0"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "study.json: 2 -> 4 cells" in done.stdout
    whole = json.load(open(tmp_path / "whole.json"))
    merged = json.load(open(tmp_path / "study.json"))
    assert sorted(merged["cells"]) == sorted(whole["cells"])
    for key, cell in whole["cells"].items():
        np.testing.assert_allclose(merged["cells"][key]["per_image"]["ssim"],
                                   cell["per_image"]["ssim"], rtol=1e-5, err_msg=key)
    md = open(tmp_path / "study.md").read()
    assert "tv0 @ c2 |" in md and f"--output={tmp_path}/study`" in md
    assert set(np.load(str(tmp_path / "study_examples.npz")).files) == set(whole["cells"])
    assert not [f for f in os.listdir(tmp_path) if ".shard-" in f]
    missing = merge(str(tmp_path / "job" / "none"))
    assert missing.returncode == 2 and "none.json does not exist" in missing.stderr
