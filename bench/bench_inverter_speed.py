"""Inverting-network forward cost per 224 image: whole stack, each module, XLA or not.

  nice -n 10 python bench/bench_inverter_speed.py --output results/inverter_speed_benchmark.md

A trained `InverterStack` (--inverter) from --layer of the shared MobileNetV2, batch
--batch_size of random inputs (cost does not depend on content). Timed: the classifier's
features up to --layer (what `reconstruct_with_network` also runs), the inverter in a
tf.function, the same compiled by XLA (jit_compile), and every inverse module alone on its
own input. Interleaved rounds (each runs every variant once, rotated order); medians, per image.
"""
import os
import sys
import time


from absl import app, flags

flags.DEFINE_string("classifier", "../shared/data/models/tf2_mobilenet_v2_1.0_224_ptq.tflite",
                    "Classifier the inverter was trained for.")
flags.DEFINE_string("inverter", "checkpoints/inverter_mobilenet_v2_joint.keras", "Inverter.")
flags.DEFINE_string("layer", "expanded_conv_12_add", "Layer to reconstruct from.")
flags.DEFINE_integer("batch_size", 16, "Images per call.")
flags.DEFINE_integer("rounds", 7, "Interleaved timing rounds.")
flags.DEFINE_string("output", "results/inverter_speed_benchmark.md", "Markdown table.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import numpy as np
    import tensorflow as tf

    from tfrestore.classifiers import load_classifier
    from tfrestore.inverters import load_inverter
    from tfrestore.io import atomic_write, environment_info
    clf = load_classifier(FLAGS.classifier)
    inv = load_inverter(FLAGS.inverter)
    layer, b = FLAGS.layer, FLAGS.batch_size
    fm = clf.feature_model(layer)
    x = tf.constant(np.random.default_rng(0).uniform(0, 255, (b,) + clf.input_shape)
                    .astype(np.float32))
    f = fm(x)
    fns = {"features (classifier to the layer)": tf.function(lambda: fm(x, training=False)),
           "inverter": tf.function(lambda: inv(f, source=layer)),
           "inverter, XLA": tf.function(lambda: inv(f, source=layer), jit_compile=True)}
    s = inv.level_index(layer)
    feats = {s: f}
    for i in range(s, 0, -1):
        feats[i - 1] = inv.inverse_modules[i - 1](feats[i])
    for i in range(s, 0, -1):
        m = inv.inverse_modules[i - 1]
        key = (f"module {i}: {inv.levels[i]} {tuple(feats[i].shape[1:])} -> {inv.levels[i - 1]} "
               f"{tuple(feats[i - 1].shape[1:])}, {m.kind}, hidden {m.hidden}, stride "
               f"{m.stride[0]}")
        fns[key] = tf.function(lambda m=m, t=feats[i]: m(t))
    names = list(fns)
    for n in names:
        fns[n]()
        fns[n]()
    times = {n: [] for n in names}
    for r in range(FLAGS.rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            fns[n]().numpy()
            times[n].append(time.perf_counter() - t0)
    med = {n: float(np.median(v)) / b for n, v in times.items()}
    for n in names:
        print(f"{n}: {med[n] * 1e3:.1f} ms/image", flush=True)
    env = environment_info()
    load = os.getloadavg()
    lines = ["# Inverting network: forward cost per image", "", "Command:", "", "```",
             "nice -n 10 python " + " ".join(sys.argv), "```", "",
             f"`{FLAGS.inverter}` from `{layer}` of `{FLAGS.classifier}`, batch {b}, median of "
             f"{FLAGS.rounds} interleaved rounds after two warm-up calls, per image. CPU only, "
             f"TensorFlow {env['tensorflow']}, {os.cpu_count()} cores shared with other jobs "
             f"(load average at the end {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}): absolute "
             "times are noisy, compare within the table.", "",
             "| what | ms / image |", "|---|---|"]
    for n in names:
        lines.append(f"| {n} | {med[n] * 1e3:.1f} |")
    atomic_write(FLAGS.output, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    app.run(main)
