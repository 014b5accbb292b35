"""Compare the four training modes of inverting networks (thesis Figs 6-7) at a fixed
budget (quick look; `bench/inverter_study.py` trains every mode to convergence).

Trains one stack per training procedure (solo -- which also gives "stacked" -- joint,
end-to-end) on the same precomputed features, evaluates every depth on held-out images,
and writes a markdown table, a JSON record, a figure and the trained inverters.

    nice -n 10 python bench/inverter_modes.py \
      --classifier=../shared/data/models/tf2_mobilenet_v2_1.0_224_ptq.tflite \
      --images=../shared/data/imagenet_samples --num_val=100 --steps=300
"""
import os
import sys
import time


import numpy as np
from absl import app, flags

flags.DEFINE_string("classifier", None, "Classifier name or .tflite/.keras path.")
flags.DEFINE_string("weights", "imagenet", "Weights for named classifiers.")
flags.DEFINE_string("images", None, "Image sources (folders, files, photo names, tfds:).")
flags.DEFINE_integer("limit", None, "Use at most this many images.")
flags.DEFINE_integer("num_val", 100, "Images held out for evaluation.")
flags.DEFINE_list("blocks", None, "Cut points, shallow to deep (default: resolution changes).")
flags.DEFINE_list("modes", ["solo", "joint", "end_to_end"], "Trainings to run.")
flags.DEFINE_integer("steps", 300, "Training steps per mode.")
flags.DEFINE_integer("batch_size", 16, "Batch size.")
flags.DEFINE_float("lr", 1e-3, "Initial learning rate (thesis-shaped schedule).")
flags.DEFINE_string("kind", "deconv", "Module kind: deconv or upsample.")
flags.DEFINE_integer("seed", 0, "Seed (split, initialisation, batch order).")
flags.DEFINE_string("feature_cache", None, "npz to reuse precomputed features.")
flags.DEFINE_string("results", "results", "Folder for the table, JSON and figure.")
flags.DEFINE_string("checkpoints", "checkpoints", "Folder for the trained inverters.")
flags.DEFINE_string("prefix", "inverter", "File name prefix for tables and inverters.")
flags.DEFINE_string("name", None, "Classifier name in inverter file names (default: its own).")
FLAGS = flags.FLAGS


def load_data(clf, levels):
    from tfrestore.data import load_images
    from tfrestore.inverters import prepare_data
    from tfrestore.inverters.training import load_features, save_features
    key = {"classifier": clf.describe(), "levels": levels, "images": FLAGS.images,
           "limit": FLAGS.limit, "num_val": FLAGS.num_val, "seed": FLAGS.seed}
    data = load_features(FLAGS.feature_cache, key)
    if data is not None:
        print(f"features from cache {FLAGS.feature_cache}", flush=True)
        return data
    t = time.time()
    loaded = load_images(FLAGS.images, clf.input_size, limit=FLAGS.limit)
    print(f"{len(loaded)} images loaded in {time.time() - t:.0f}s", flush=True)
    t = time.time()
    data = prepare_data(clf, levels, loaded.images, loaded.paths, num_val=FLAGS.num_val,
                        seed=FLAGS.seed)
    print(f"features in {time.time() - t:.0f}s", flush=True)
    if FLAGS.feature_cache:
        save_features(FLAGS.feature_cache, data, key)
    return data


def figure(path, data, stacks, clf_name, n=4):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tfrestore.io import atomic_write
    import io
    any_stack = next(iter(stacks.values()))
    levels = any_stack.levels[1:]
    cols = [("original", None, None)] + [(m, m, l) for l in levels for m in stacks]
    fig, axes = plt.subplots(n, len(cols), figsize=(1.6 * len(cols), 1.7 * n + 0.4))
    truth = np.clip(np.asarray(any_stack.to_rgb(data.val[0][:n])), 0, 255) / 255
    for c, (title, mode, layer) in enumerate(cols):
        if mode is None:
            imgs = truth
        else:
            s = stacks[mode]
            imgs = np.clip(np.asarray(s(data.val[s.level_index(layer)][:n], source=layer)),
                           0, 255) / 255
        for r in range(n):
            ax = axes[r, c]
            ax.imshow(imgs[r])
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(title if mode is None else f"{mode}\n{layer}", fontsize=6)
    fig.suptitle(f"{clf_name}: inverting networks by training mode (held-out images)",
                 fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write(path, buf.getvalue())


def main(argv):
    del argv
    import tfrestore  # noqa: F401
    from tfrestore.classifiers import load_classifier
    from tfrestore.inverters import (TrainConfig, Trainer, build_stack, evaluate_stack,
                                     resolve_blocks, save_stack)
    from tfrestore.io import atomic_write, environment_info, write_json
    clf = load_classifier(FLAGS.classifier, weights=FLAGS.weights, seed=FLAGS.seed)
    blocks = resolve_blocks(clf, FLAGS.blocks)
    levels = ["input"] + blocks
    data = load_data(clf, levels)
    print(f"train {data.n_train}, val {len(data.val_names)}; levels {levels}", flush=True)
    results, stacks, times, histories = {}, {}, {}, {}
    for mode in FLAGS.modes:
        cfg = TrainConfig(mode=mode, steps=FLAGS.steps, batch_size=FLAGS.batch_size,
                          lr=FLAGS.lr, seed=FLAGS.seed, log_every=5,
                          val_every=FLAGS.steps)
        trainer = Trainer(lambda: build_stack(clf, blocks=blocks, kind=FLAGS.kind,
                                              seed=FLAGS.seed), data, cfg)
        t = time.time()
        hist = trainer.train(verbose=True)
        times[mode] = time.time() - t
        print(f"{mode}: {times[mode]:.0f}s, last {hist[-1]}", flush=True)
        stacks[mode] = trainer.stack
        histories[mode] = hist
        results[mode] = evaluate_stack(trainer.stack, clf, data.val)
        name = FLAGS.name or os.path.basename(clf.name).replace(".", "_")
        label = "stacked" if mode == "solo" else mode  # solo modules are used chained
        save_stack(trainer.stack, os.path.join(FLAGS.checkpoints,
                                               f"{FLAGS.prefix}_{name}_{label}.keras"))
    rows = []
    for mode in FLAGS.modes:
        labels = ["solo", "stacked"] if mode in ("solo", "stacked") else [mode]
        for label in labels:
            for layer, r in results[mode].items():
                if label == "solo":
                    rows.append(f"| solo (module alone, true input) | {layer} | – | – | – | – "
                                f"| {r['solo_module_nmse']:.4f} |")
                else:
                    rows.append(f"| {label} | {layer} | {r['image_mse']:.0f} | {r['psnr']:.2f} "
                                f"| {r['ssim']:.3f} | {r['feature_nmse']:.4f} "
                                f"| {r['solo_module_nmse']:.4f} |")
    cmd = "nice -n 10 python " + " ".join(sys.argv)
    fig_name = f"{FLAGS.prefix}_modes.png"
    md = [f"# Inverting networks: training modes compared ({clf.name})", "",
          "```", cmd, "```", "",
          f"Training images: {data.n_train}; held-out evaluation images: "
          f"{len(data.val_names)} (never trained on). Steps per mode: "
          f"{min(FLAGS.steps, histories[FLAGS.modes[0]][-1]['step'])}, batch "
          f"{FLAGS.batch_size}, Adam lr {FLAGS.lr} with the thesis schedule shape "
          f"(/3 at 4/15, /10 at 8/15, /30 at 12/15 of the steps), module kind {FLAGS.kind}, "
          f"seed {FLAGS.seed}. Training time per mode (s): "
          + ", ".join(f"{m} {t:.0f}" for m, t in times.items()) + ".", "",
          "Columns: reconstruction from the true features of *layer* by chaining the modules "
          "down to the image. Image MSE on RGB 0-255, PSNR (dB), SSIM; feature NMSE = "
          "||phi(x_rec) - phi(x)||^2 / ||phi(x)||^2 at that layer; module NMSE = the "
          "module starting at that layer alone, on true input, vs the true target one "
          "level down (same normalisation). All means over the held-out images.", "",
          "| mode | layer | image MSE | PSNR | SSIM | feature NMSE | module NMSE |",
          "|---|---|---|---|---|---|---|"] + rows + ["", f"![modes]({fig_name})", ""]
    os.makedirs(FLAGS.results, exist_ok=True)
    atomic_write(os.path.join(FLAGS.results, f"{FLAGS.prefix}_modes.md"), "\n".join(md))
    write_json(os.path.join(FLAGS.results, f"{FLAGS.prefix}_modes.json"),
               {"results": results, "train_seconds": times, "histories": histories,
                "levels": levels, "val_images": data.val_names, "scales": data.scales,
                "classifier": clf.describe(), "environment": environment_info(),
                "flags": {f: getattr(FLAGS, f) for f in ("steps", "batch_size", "lr", "kind",
                                                          "seed", "num_val", "limit")}})
    figure(os.path.join(FLAGS.results, fig_name), data, {m if m != "solo" else "stacked": s
                                                         for m, s in stacks.items()}, clf.name)
    print("\n".join(md))


if __name__ == "__main__":
    flags.mark_flags_as_required(["classifier", "images"])
    app.run(main)
