"""Time per image and quality of network, hybrid and optimisation reconstructions.

    nice -n 10 python bench/bench_inverters.py \
      --classifier=../shared/data/models/tf2_mobilenet_v2_1.0_224_ptq.tflite \
      --inverter=checkpoints/inverter_tf2_mobilenet_v2_1_joint.keras \
      --layer=expanded_conv_5_add --val_json=results/inverter_modes.json --num_images=4 \
      --opt_steps=100 --hybrid_steps=30

Images are held-out ones (never trained on), read from the mode comparison's JSON.
"""
import json
import os
import sys
import time


import numpy as np
from absl import app, flags

flags.DEFINE_string("classifier", None, "Classifier name or .tflite/.keras path.")
flags.DEFINE_string("inverter", None, "Trained inverter (.keras).")
flags.DEFINE_string("layer", None, "Layer to reconstruct from.")
flags.DEFINE_string("val_json", None, "JSON with 'val_images' (held-out image paths).")
flags.DEFINE_string("images", None, "Images instead of --val_json.")
flags.DEFINE_integer("num_images", 4, "Number of images.")
flags.DEFINE_string("preset", "mv2016", "Optimisation preset.")
flags.DEFINE_integer("opt_steps", 100, "Optimisation steps from noise.")
flags.DEFINE_integer("hybrid_steps", 30, "Optimisation steps after the network.")
flags.DEFINE_float("hybrid_lr_scale", 0.1, "Learning-rate factor of the hybrid.")
flags.DEFINE_integer("seed", 0, "Seed of the noise start and jitter.")
flags.DEFINE_string("output", "results/inverter_timing.md", "Markdown table.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import tfrestore  # noqa: F401
    from tfrestore.classifiers import load_classifier
    from tfrestore.data import load_images
    from tfrestore.inversion import get_settings, invert
    from tfrestore.inverters import (load_inverter, reconstruct_hybrid,
                                     reconstruct_with_network)
    from tfrestore.io import atomic_write, environment_info, write_json
    from tfrestore.metrics import evaluate_reconstructions
    clf = load_classifier(FLAGS.classifier)
    sources = (json.load(open(FLAGS.val_json))["val_images"][:FLAGS.num_images]
               if FLAGS.val_json else FLAGS.images)
    images = load_images(sources, clf.input_size, limit=FLAGS.num_images).images
    n = len(images)
    inv = load_inverter(FLAGS.inverter)
    settings = get_settings(FLAGS.preset, clf, FLAGS.layer, seed=FLAGS.seed)
    rows = {}
    net = reconstruct_with_network(inv, clf, FLAGS.layer, images)
    rows["network"] = (net.reconstructions, net.seconds, "1 forward pass")
    print(f"network {net.seconds:.2f}s", flush=True)
    hyb = reconstruct_hybrid(inv, clf, FLAGS.layer, images, settings,
                             lr_scale=FLAGS.hybrid_lr_scale, steps=FLAGS.hybrid_steps)
    rows["hybrid"] = (hyb.reconstructions, hyb.seconds,
                      f"network + {hyb.optimisation.steps} steps at {FLAGS.hybrid_lr_scale}x lr")
    print(f"hybrid {hyb.seconds:.2f}s", flush=True)
    t = time.perf_counter()
    opt = invert(clf, images, settings, steps=FLAGS.opt_steps, verbose=False)
    rows["optimisation"] = (opt.reconstructions, time.perf_counter() - t,
                            f"{opt.steps} steps from noise ({FLAGS.preset})")
    print(f"optimisation {rows['optimisation'][1]:.2f}s", flush=True)
    table, record = [], {}
    for name, (rec, secs, what) in rows.items():
        m = evaluate_reconstructions(clf, images, rec, FLAGS.layer)
        mean = {k: float(np.mean(v)) for k, v in m.items()}
        record[name] = dict(mean, seconds_per_image=secs / n, what=what)
        table.append(f"| {name} | {what} | {1000 * secs / n:.0f} | {mean['mse']:.0f} | "
                     f"{mean['psnr']:.2f} | {mean['ssim']:.3f} | {mean['feature_error']:.4f} |")
    cmd = "nice -n 10 python " + " ".join(sys.argv)
    md = [f"# Reconstruction time and quality: network, hybrid, optimisation ({clf.name}, "
          f"{FLAGS.layer})", "", "```", cmd, "```", "",
          f"{n} held-out images (never trained on), batch of {n}, CPU shared with other jobs "
          f"(2 cores): times are wall-clock per image, indicative only. Optimisation uses the "
          f"{FLAGS.preset} preset with its schedule compressed to the step count shown "
          f"(the paper's 3500 steps were out of budget). Metrics on the clipped RGB 0-255 "
          f"reconstructions; feature error = ||phi(x_rec) - phi(x)||^2 / ||phi(x)||^2 at the "
          f"layer.", "",
          "| method | what runs | ms / image | MSE | PSNR | SSIM | feature error |",
          "|---|---|---|---|---|---|---|"] + table + [""]
    atomic_write(FLAGS.output, "\n".join(md))
    write_json(os.path.splitext(FLAGS.output)[0] + ".json",
               {"results": record, "layer": FLAGS.layer, "inverter": inv.describe(),
                "images": list(sources) if not isinstance(sources, str) else sources,
                "settings": settings.as_dict(), "environment": environment_info()})
    print("\n".join(md))


if __name__ == "__main__":
    flags.mark_flags_as_required(["classifier", "inverter", "layer"])
    app.run(main)
