"""Tests for tfrestore.plotting: difference-picture values and valid PNG output."""
import os

import numpy as np
import pytest

from tfrestore import plotting

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _read_png(path):
    import matplotlib.image as mpimg
    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    return mpimg.imread(path)


def test_difference_images_identical_is_grey_and_black(rng):
    img = rng.uniform(0, 255, (8, 9, 3))
    colour, absd = plotting.difference_images(img, img.copy())
    np.testing.assert_array_equal(colour, 0.5)
    np.testing.assert_array_equal(absd, 0.0)


def test_difference_images_values_match_formula(rng):
    img = rng.uniform(0, 255, (6, 5, 3))
    rec = img + rng.normal(0, 20, img.shape)
    colour, absd = plotting.difference_images(img, rec)
    d = img - rec
    m = np.abs(d).max()
    np.testing.assert_allclose(colour, 0.5 + 0.5 * d / m)
    np.testing.assert_allclose(absd, np.abs(d) / m)
    # symmetric scaling: the extreme error hits exactly 0 or 1, and the range is [0, 1]
    assert colour.min() >= 0 and colour.max() <= 1
    assert np.isclose(min(colour.min(), 1 - colour.max()), 0.0)
    assert np.isclose(absd.max(), 1.0)
    # sign (seed §4.2): where the reconstruction has less blue, the picture is blue
    rec2 = img.copy()
    rec2[2, 2, 2] -= 50.0
    colour2, _ = plotting.difference_images(img, rec2)
    assert colour2[2, 2, 2] == 1.0 and colour2[2, 2, 0] == 0.5


def test_colour_difference_is_blue_where_the_reconstruction_lacks_blue(rng):
    # Seed §4.2: image - reconstruction. A reconstruction with less blue everywhere (and
    # red and green exact) gives a picture that is bluest where most blue is missing, grey
    # elsewhere; a reconstruction with *more* blue gives yellow (blue below grey).
    img = rng.uniform(60, 200, (5, 6, 3))
    lack = np.zeros_like(img)
    lack[..., 2] = rng.uniform(5, 50, (5, 6))
    colour, absd = plotting.difference_images(img, img - lack)
    np.testing.assert_array_equal(colour[..., :2], 0.5)
    assert np.all(colour[..., 2] > 0.5)
    i = np.unravel_index(np.argmax(lack[..., 2]), lack.shape[:2])
    assert colour[i][2] == 1.0 and absd[i][2] == 1.0
    # Independent: blue channel = 0.5 + 0.5 * missing blue / largest missing blue.
    np.testing.assert_allclose(colour[..., 2], 0.5 + 0.5 * lack[..., 2] / lack[..., 2].max())
    more, _ = plotting.difference_images(img, img + lack)
    assert np.all(more[..., 2] < 0.5) and np.all(more[..., :2] == 0.5)


def test_difference_images_bad_shapes():
    with pytest.raises(ValueError, match="differ in shape"):
        plotting.difference_images(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        plotting.difference_images(np.zeros((4, 4)), np.zeros((4, 4)))


def test_reconstruction_figure_writes_png(tmp_path, rng):
    img = rng.uniform(0, 255, (16, 16, 3))
    path = str(tmp_path / "sub" / "fig.png")
    plotting.save_reconstruction_figure(path, img, img * 0.9, title="conv1",
                                        extra={"PSNR": 21.5, "SSIM": 0.7})
    arr = _read_png(path)
    assert arr.ndim == 3 and arr.shape[0] > 50 and arr.shape[1] > 4 * 50
    assert not [f for f in os.listdir(tmp_path / "sub") if f.startswith(".tmp-")]


def test_reconstruction_grid_and_validation(tmp_path, rng):
    img = rng.uniform(0, 255, (12, 12, 3))
    rows = {"M&V": [img * 0.5, img * 0.8], "FoE": [img, None]}
    path = str(tmp_path / "grid.png")
    plotting.save_reconstruction_grid(path, img, rows, ["conv1", "conv2"], diff=True)
    _read_png(path)
    with pytest.raises(ValueError, match="expected 2"):
        plotting.save_reconstruction_grid(path, img, {"x": [img]}, ["conv1", "conv2"])


def test_filter_grid_sorted_by_weight(tmp_path, rng):
    filters = rng.normal(size=(10, 5, 5, 3))
    weights = rng.uniform(0.1, 2.0, 10)
    order = plotting.filter_grid(str(tmp_path / "f.png"), filters, weights, max_filters=6)
    assert len(order) == 6
    assert np.all(np.diff(weights[order]) <= 0)
    assert weights[order[0]] == weights.max()
    _read_png(str(tmp_path / "f.png"))
    # grey filters and many channels are accepted too
    plotting.filter_grid(str(tmp_path / "g.png"), rng.normal(size=(4, 3, 3, 96)))
    with pytest.raises(ValueError, match="4 weights for 3"):
        plotting.filter_grid(str(tmp_path / "h.png"), filters[:3], weights[:4])


def test_symmetric_rescale_zero_is_grey():
    np.testing.assert_array_equal(plotting.symmetric_rescale(np.zeros((3, 3))), 0.5)
    np.testing.assert_allclose(plotting.symmetric_rescale(np.array([-2.0, 1.0])), [0.0, 0.75])


# ---------------------------------------------------------------------- training curves
def _write_events(logdir):
    """TF2 scalars (tensor + "scalars" plugin metadata, what tf.summary.scalar writes; the
    tensorboard package is absent here so core tf.summary.write is used), a non-scalar
    blob, and a TF1-style event file with simple_value, written as raw TFRecords."""
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2
    md = summary_pb2.SummaryMetadata()
    md.plugin_data.plugin_name = "scalars"
    md.data_class = summary_pb2.DATA_CLASS_SCALAR
    truth = {}
    for sub, scale in (("train", 1.0), ("val", 2.0)):
        writer = tf.summary.create_file_writer(os.path.join(logdir, sub))
        with writer.as_default():
            for step in range(0, 50, 5):
                v = scale * float(np.exp(-step / 10.0))
                tf.summary.write("loss", tf.constant(v, tf.float32), step=step, metadata=md)
                truth.setdefault(f"{sub}/loss", []).append((step, v))
            tf.summary.write("img", tf.constant(["4", "4", "png-bytes"]), step=0)
        writer.close()
    os.makedirs(os.path.join(logdir, "v1"))
    with tf.io.TFRecordWriter(os.path.join(logdir, "v1", "events.out.tfevents.1.host")) as w:
        for step in (0, 1, 2, 2):   # step 2 logged twice: the last value wins
            value = tf.compat.v1.Summary.Value(tag="lr", simple_value=0.1 * (step + 1))
            ev = tf.compat.v1.Event(step=step, summary=tf.compat.v1.Summary(value=[value]))
            w.write(ev.SerializeToString())
    truth["v1/lr"] = [(0, 0.1), (1, 0.2), (2, 0.3)]
    return truth


def test_read_scalars_from_tf2_event_files(tmp_path):
    truth = _write_events(str(tmp_path / "logs"))
    scalars = plotting.read_scalars(str(tmp_path / "logs"))
    assert sorted(scalars) == ["train/loss", "v1/lr", "val/loss"]
    for tag, pairs in truth.items():
        steps, vals = scalars[tag]
        np.testing.assert_array_equal(steps, [s for s, _ in pairs])
        np.testing.assert_allclose(vals, [v for _, v in pairs], rtol=1e-6)
    tags = plotting.save_training_curves(str(tmp_path / "curves.png"), str(tmp_path / "logs"),
                                         smoothing=0.6)
    assert tags == ["train/loss", "v1/lr", "val/loss"]
    _read_png(str(tmp_path / "curves.png"))
    with pytest.raises(KeyError, match="available"):
        plotting.save_training_curves(str(tmp_path / "c2.png"), scalars, tags=["nope"])
    with pytest.raises(FileNotFoundError, match="event files"):
        plotting.read_scalars(str(tmp_path / "empty"))


def test_smooth_matches_debiased_ema():
    v = np.array([1.0, 3.0, 2.0, 5.0])
    w = 0.5
    # by hand: debiased EMA
    s1 = 1.0
    s2 = (0.5 * 0.5 * 1 + 0.5 * 3) / (1 - 0.25)
    np.testing.assert_allclose(plotting.smooth(v, w)[:2], [s1, s2])
    np.testing.assert_allclose(plotting.smooth(v, 0.0), v)
    np.testing.assert_allclose(plotting.smooth(np.full(5, 2.0), 0.9), 2.0)
    with pytest.raises(ValueError):
        plotting.smooth(v, 1.0)


def test_covariance_heatmap_writes_png(tmp_path, rng):
    a = rng.normal(size=(9, 9))
    plotting.covariance_heatmap(str(tmp_path / "c.png"), [a @ a.T, np.linalg.inv(a @ a.T)],
                                ["cov", "inverse"], suptitle="test")
    arr = _read_png(str(tmp_path / "c.png"))
    assert arr.shape[1] > arr.shape[0]   # two panels side by side


def test_save_validation_curves(tmp_path):
    hist = [{"step": 10, "val_total": 1.0, "criterion": "improved"},
            {"step": 15, "train_total": 0.9},
            {"step": 20, "val_total": 0.8, "criterion": "drop"},
            {"step": 30, "val_total": 0.81, "criterion": "converged"}]
    path = str(tmp_path / "c.png")
    assert plotting.save_validation_curves(path, {"a": hist, "empty": hist[1:2]}) == ["a"]
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="val_total"):
        plotting.save_validation_curves(path, {"empty": hist[1:2]})


def test_comparison_curves_need_a_curve(tmp_path):
    from tfrestore.plotting.curves import save_comparison_curves
    path = str(tmp_path / "c.png")
    cells = {"l | net": {"seconds": 1.0, "record": {}}}      # a network cell: no curve
    assert save_comparison_curves(path, {"cells": cells}, ["l"], ["net"]) is None
    assert not os.path.exists(path)
    cells["l | opt"] = {"curve": [{"step": 1, "ssim": [0.1], "feature_error": [1.0]},
                                  {"step": 2, "ssim": [0.2], "feature_error": [0.5]}],
                        "record": {"converged": True}}
    assert save_comparison_curves(path, {"cells": cells}, ["l"], ["net", "opt"]) == path
    assert os.path.getsize(path) > 1000


def test_comparison_curves_keep_a_methods_colour_across_layers(monkeypatch):
    """A method missing at one layer must not shift the others' colours there: the legend
    is drawn once for the whole figure."""
    from tfrestore.plotting import curves
    figures = []
    monkeypatch.setattr(curves, "save_figure", lambda fig, path: figures.append(fig))
    curve = [{"step": 1, "ssim": [0.1], "feature_error": [1.0]},
             {"step": 2, "ssim": [0.2], "feature_error": [0.5]}]
    cells = {"l1 | b": {"curve": curve}, "l2 | a": {"curve": curve}, "l2 | b": {"curve": curve}}
    curves.save_comparison_curves("unused.png", {"cells": cells}, ["l1", "l2"], ["a", "b"])
    (fig,) = figures
    colour = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            colour.setdefault(line.get_label(), set()).add(line.get_color())
    assert len(colour["b"]) == 1 and len(colour["a"]) == 1
    assert colour["a"] != colour["b"]


def test_validation_curves_mark_the_weights_kept_not_the_lowest_value():
    """The kept weights are the criterion's last "improved" evaluation: a later value lower
    by less than rtol (0.0837 after 0.0839, AlexNet module 2) is not what was shipped."""
    from tfrestore.plotting.curves import kept_index
    hist = [{"step": 5600, "val_total": 0.0843, "criterion": "improved"},
            {"step": 5700, "val_total": 0.0839, "criterion": "improved"},
            {"step": 5800, "val_total": 0.0838, "criterion": "wait"},
            {"step": 6500, "val_total": 0.0837, "criterion": "converged"}]
    vals = [r["val_total"] for r in hist]
    assert kept_index(hist, vals) == 1
    assert kept_index([{"step": 1}, {"step": 2}], [0.5, 0.4]) == 1   # no criterion: lowest
