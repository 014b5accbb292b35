"""Inverting-network forward cost per 224 image: whole stack, each module, XLA or not.

  nice -n 10 python bench/bench_inverter_speed.py --output results/inverter_speed_benchmark.md

A trained `InverterStack` (--inverter) from --layer of the shared MobileNetV2, batch
--batch_size of random inputs (cost does not depend on content). Timed: the classifier's
features up to --layer (what `reconstruct_with_network` also runs), the inverter in a
tf.function, the same compiled by XLA (jit_compile), and every inverse module alone on its
own input -- each "deconv" one with both computations of its transposed convolution
(`InverseModule.deconv_impl`: "transpose", Keras' Conv2DTranspose, the default, and
"subpixel", a stride-1 conv + depth_to_space). Interleaved rounds (each runs every
variant once, rotated order); medians per image of the wall time and of this process's CPU time (user + system,
all threads: less sensitive to other jobs on a shared machine than wall time).
"""
import os
import resource
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
    impls = ("transpose", "subpixel")

    def traced(fn, impl, **kw):
        """A tf.function traced now with every module's deconv_impl = impl."""
        f = tf.function(fn, **kw)
        saved = [m.deconv_impl for m in inv.inverse_modules]
        for m in inv.inverse_modules:
            m.deconv_impl = impl
        f()
        for m, v in zip(inv.inverse_modules, saved):
            m.deconv_impl = v
        return f

    fns = {"features (classifier to the layer)": traced(lambda: fm(x, training=False),
                                                        impls[0])}
    for impl in impls:
        fns[f"inverter ({impl})"] = traced(lambda: inv(f, source=layer), impl)
        fns[f"inverter ({impl}), XLA"] = traced(lambda: inv(f, source=layer), impl,
                                                jit_compile=True)
    s = inv.level_index(layer)
    feats = {s: f}
    for i in range(s, 0, -1):
        feats[i - 1] = inv.inverse_modules[i - 1](feats[i])
    for i in range(s, 0, -1):
        m = inv.inverse_modules[i - 1]
        for impl in (impls if m.kind == "deconv" else impls[:1]):
            key = (f"module {i}: {inv.levels[i]} {tuple(feats[i].shape[1:])} -> "
                   f"{inv.levels[i - 1]} {tuple(feats[i - 1].shape[1:])}, {m.kind} "
                   f"({impl}), hidden {m.hidden}, stride {m.stride[0]}")
            fns[key] = traced(lambda m=m, t=feats[i]: m(t), impl)
    names = list(fns)
    for n in names:
        fns[n]()

    def cpu():
        u = resource.getrusage(resource.RUSAGE_SELF)
        return u.ru_utime + u.ru_stime

    times = {n: [] for n in names}
    cpus = {n: [] for n in names}
    for r in range(FLAGS.rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:
            c, t0 = cpu(), time.perf_counter()
            fns[n]().numpy()
            times[n].append(time.perf_counter() - t0)
            cpus[n].append(cpu() - c)
    med = {n: float(np.median(v)) / b for n, v in times.items()}
    cmed = {n: float(np.median(v)) / b for n, v in cpus.items()}
    for n in names:
        print(f"{n}: {med[n] * 1e3:.1f} ms/image wall, {cmed[n] * 1e3:.1f} ms/image CPU",
              flush=True)
    env = environment_info()
    load = os.getloadavg()
    ratio = lambda a, b_: med[a] / med[b_]  # noqa: E731
    lines = ["# Inverting network: forward cost per image", "", "Command:", "", "```",
             "nice -n 10 python " + " ".join(sys.argv), "```", "",
             f"`{FLAGS.inverter}` from `{layer}` of `{FLAGS.classifier}`, batch {b}, median of "
             f"{FLAGS.rounds} interleaved rounds after two warm-up calls, per image. CPU only, "
             f"TensorFlow {env['tensorflow']}, {os.cpu_count()} cores shared with other jobs "
             f"(load average at the end {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}): absolute "
             "times are noisy, compare within the table.", "",
             "Ratio (same process, interleaved): inverter subpixel / transpose "
             f"{ratio('inverter (subpixel)', 'inverter (transpose)'):.3f} (wall), "
             f"{cmed['inverter (subpixel)'] / cmed['inverter (transpose)']:.3f} (CPU).", "",
             "| what | ms / image (wall) | ms / image (CPU time) |", "|---|---|---|"]
    for n in names:
        lines.append(f"| {n} | {med[n] * 1e3:.1f} | {cmed[n] * 1e3:.1f} |")
    atomic_write(FLAGS.output, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    app.run(main)
