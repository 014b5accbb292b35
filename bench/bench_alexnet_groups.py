"""AlexNet's grouped convolutions: forward + backward to the input, three forms, one process.

  nice -n 10 python bench/bench_alexnet_groups.py --output results/alexnet_groups_benchmark.md

Three AlexNets (random weights, seed 0) are cut at `--layer` (default conv5, ReLU output):

  split     the package's AlexNet: conv2/4/5 as `SplitGroupConv2D` (one conv per group)
  grouped   the same network with Keras `Conv2D(groups=2)` (the form before the change)
  ungrouped an AlexNet with the same FLOPs and shapes and no groups: each grouped layer
            (cin -> cout, 2 groups) becomes one plain convolution of the first cin/2 input
            channels to all cout outputs (a channel slice + one Conv2D)

One timed call = tf.function computing the features and the gradient of
sum(features * fixed random weights) w.r.t. the input image (as an inversion step does).
The forms are timed interleaved in rounds (round r times every form once, in rotated
order), and the table reports medians over rounds and the ratios of medians.
"""
import os
import sys
import time


from absl import app, flags

flags.DEFINE_string("layer", "conv5", "AlexNet layer to cut at (canonical name).")
flags.DEFINE_list("batch_sizes", ["1", "8"], "Images per call.")
flags.DEFINE_integer("rounds", 15, "Interleaved timing rounds per batch size.")
flags.DEFINE_string("output", "results/alexnet_groups_benchmark.md", "Markdown table.")
flags.DEFINE_integer("seed", 0, "Seed of weights and images.")
FLAGS = flags.FLAGS


def _rebuild(model, replace):
    """A copy of the sequential functional `model` with layers mapped through `replace`."""
    import keras
    inp = keras.Input(model.input_shape[1:])
    x = inp
    for layer in model.layers[1:]:
        x = replace(layer)(x)
    return keras.Model(inp, x)


def build_forms(seed):
    """{form: Classifier} for split, grouped and ungrouped AlexNets."""
    import keras

    from tfrestore.classifiers.alexnet import alexnet_preprocessing, build_alexnet
    from tfrestore.classifiers.base import Classifier
    from tfrestore.classifiers.layers import SplitGroupConv2D
    keras.utils.set_random_seed(seed)
    raw = build_alexnet()  # fused activations: Classifier splits them (once) for each form

    def grouped(layer):
        if isinstance(layer, SplitGroupConv2D):
            new = keras.layers.Conv2D.from_config(layer.get_config())
            new.build(layer.input.shape)
            new.set_weights(layer.get_weights())
            return new
        return layer

    def ungrouped(layer):
        if isinstance(layer, SplitGroupConv2D) and layer.groups > 1:
            cin = layer.input.shape[-1] // layer.groups
            cfg = dict(layer.get_config(), groups=1)
            conv = keras.layers.Conv2D.from_config(cfg)
            conv.build(layer.input.shape[:-1] + (cin,))
            conv.set_weights(layer.get_weights())  # same kernel shape, no groups
            return lambda t: conv(t[..., :cin])
        return layer

    forms = {"split": Classifier("alexnet", raw, alexnet_preprocessing())}
    for name, fn in (("grouped", grouped), ("ungrouped", ungrouped)):
        forms[name] = Classifier(f"alexnet_{name}", _rebuild(raw, fn), alexnet_preprocessing())
    return forms


def make_step(clf, layer, batch, seed):
    import numpy as np
    import tensorflow as tf
    fm = clf.feature_model([layer])
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.uniform(0, 255, (batch,) + clf.input_shape).astype(np.float32))
    shape = (batch,) + clf.output_shape(layer)
    w = tf.constant(rng.standard_normal(shape).astype(np.float32))

    @tf.function
    def step(t):
        with tf.GradientTape() as tape:
            tape.watch(t)
            f = fm(t)
            f = f[0] if isinstance(f, (list, tuple)) else f
            loss = tf.reduce_sum(f * w)
        return loss, tape.gradient(loss, t)

    return lambda: [v.numpy() for v in step(x)]


def main(argv):
    del argv
    import numpy as np

    from tfrestore.io import atomic_write, environment_info
    forms = build_forms(FLAGS.seed)
    names = list(forms)
    rows = []
    for batch in [int(b) for b in FLAGS.batch_sizes]:
        steps = {n: make_step(forms[n], FLAGS.layer, batch, FLAGS.seed) for n in names}
        outs = {n: steps[n]() for n in names}  # trace + warm-up
        for n in names:
            outs[n] = steps[n]()
        # Same features, same gradients (grouped vs split); ungrouped is another network.
        gerr = float(np.abs(outs["split"][1] - outs["grouped"][1]).max()
                     / np.abs(outs["grouped"][1]).max())
        times = {n: [] for n in names}
        for r in range(FLAGS.rounds):
            for n in names[r % len(names):] + names[:r % len(names)]:
                t0 = time.perf_counter()
                steps[n]()
                times[n].append(time.perf_counter() - t0)
        med = {n: float(np.median(times[n])) for n in names}
        print(f"batch {batch}: " + ", ".join(f"{n} {med[n] * 1e3:.0f} ms" for n in names)
              + f"; split/ungrouped {med['split'] / med['ungrouped']:.2f}, grouped/split "
              f"{med['grouped'] / med['split']:.2f}; gradient rel. diff {gerr:.1e}", flush=True)
        rows.append((batch, med, gerr))
    env = environment_info()
    load = os.getloadavg()
    lines = ["# AlexNet grouped convolutions: forward + backward to the input", "", "Command:",
             "", "```", "nice -n 10 python " + " ".join(sys.argv), "```", "",
             f"Random-weight AlexNet (seed {FLAGS.seed}) cut at `{FLAGS.layer}`; one call = "
             "features + gradient of a fixed random linear function of them w.r.t. the input, "
             f"in a tf.function. Median of {FLAGS.rounds} interleaved rounds per batch size "
             "(after two warm-up calls). *split* = the package's `SplitGroupConv2D`, "
             "*grouped* = Keras `Conv2D(groups=2)` with the same weights, *ungrouped* = a "
             "network with the same FLOPs and shapes and no groups (each grouped layer reads "
             "the first half of its input channels with one plain convolution). "
             f"CPU only, TensorFlow {env['tensorflow']}, {os.cpu_count()} cores shared with "
             f"other jobs (load average at the end {load[0]:.1f}, {load[1]:.1f}, "
             f"{load[2]:.1f}); absolute times are noisy, the ratios are the point.", "",
             "| batch | split ms | grouped ms | ungrouped ms | split / ungrouped | "
             "grouped / split | input-gradient rel. diff split vs grouped |",
             "|---|---|---|---|---|---|---|"]
    for batch, med, gerr in rows:
        lines.append(f"| {batch} | {med['split'] * 1e3:.0f} | {med['grouped'] * 1e3:.0f} | "
                     f"{med['ungrouped'] * 1e3:.0f} | {med['split'] / med['ungrouped']:.2f} | "
                     f"{med['grouped'] / med['split']:.2f} | {gerr:.1e} |")
    atomic_write(FLAGS.output, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    app.run(main)
