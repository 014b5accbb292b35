"""Time per step: full pre-image step vs bare forward+backward of the same cut network.

  nice -n 10 python bench/bench_inversion.py --steps=10 --batch=1,8 \
    --pieces=alexnet:conv5:1,mobilenet:expanded_conv_13_add:1 --output=results/inversion_benchmark.md

"bare": a tf.function computing the cut network's features of a batch and the gradient
of sum(features^2) with respect to the input (what any inversion must at least do).
"full": one step of the engine (`ImageOptimizer.engine.step_fn`) with the mv2016 priors
(range + TV + projection), jitter on, Adam, plus the loop's per-step work (the NaN guard
and the convergence meter read the objective). Same process, same batch, same input size,
both plain tf.functions (the step's XLA-compiled pieces are part of what is measured);
timings interleaved (--block calls of each in turn) so that load from other processes
hits both alike; the
median per-step wall time and the median CPU time of this process (user + system, all
threads: much less sensitive to other jobs than wall time on a shared machine) are reported.

--pieces adds a second table for the listed configs: the step built up piece by piece
(bare -> feature loss through the parameterization -> + jitter -> + image priors ->
+ update = the engine step -> the engine's Python loop with the standard callbacks), so
the cost of each piece is the difference of two rows.
Weights do not change the cost: VGG16 and AlexNet use random weights (no ImageNet
weights offline); MobileNetV2 is the shared TFLite model (dequantised).
"""
import os
import resource
import sys
import time

from absl import app, flags

flags.DEFINE_integer("steps", 20, "Timed steps per variant (after 3 warm-up steps).")
flags.DEFINE_list("batch", ["1", "8"], "Images per step (one table row per value).")
flags.DEFINE_string("mobilenet", "mobilenet_v2_tflite", "MobileNetV2 (the bundled TFLite).")
flags.DEFINE_string("mobilenet_layer", "expanded_conv_13_add", "MobileNetV2 layer.")
flags.DEFINE_string("output", None, "Markdown table to write.")
flags.DEFINE_integer("block", 1, "Consecutive calls of one variant before the next "
                     "(1 = strictly alternating: a burst of load hits every variant alike).")
flags.DEFINE_list("pieces", [], "Configs NET:LAYER:BATCH for the piece-by-piece table "
                  "(e.g. alexnet:conv5:1).")
FLAGS = flags.FLAGS


def _cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def _time_blocks(fns, steps, block=None):
    """{name: (median wall s, median CPU s)} per call, interleaved in blocks."""
    import numpy as np
    times = {k: [] for k in fns}
    cpus = {k: [] for k in fns}
    for k, f in fns.items():
        for _ in range(3):
            f()
    block = block or FLAGS.block
    done = 0
    while done < steps:
        n = min(block, steps - done)
        for k, f in fns.items():
            for _ in range(n):
                c, t = _cpu(), time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t)
                cpus[k].append(_cpu() - c)
        done += n
    return {k: (float(np.median(times[k])), float(np.median(cpus[k]))) for k in fns}


def _setup(clf, layer, batch):
    import numpy as np
    import tensorflow as tf
    from tfrestore.inversion import PreimageOptimizer, get_settings
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch,) + clf.input_shape).astype(np.float32)
    s = get_settings("mv2016", clf, layer, jitter=4)
    opt = PreimageOptimizer(clf, images, s, steps=10 ** 6)
    model = clf.feature_model(layer)
    x = tf.Variable(images)

    @tf.function
    def bare():
        with tf.GradientTape() as tape:
            f = model(x, training=False)
            loss = tf.reduce_sum(tf.square(f))
        return tape.gradient(loss, x)

    def run_bare():
        return bare().numpy()  # .numpy(): wait for the result, as the loop's logging does

    return opt, run_bare


def bench_one(clf, layer, batch, steps):
    import numpy as np
    import tensorflow as tf
    opt, run_bare = _setup(clf, layer, batch)
    i, n = tf.constant(0), tf.constant(opt.steps)

    def run_full():
        total = opt.engine.step_fn(i, n)[0].numpy()   # NaN guard / convergence meter read it
        return np.isfinite(total).all() and float(np.mean(total))

    return _time_blocks({"bare": run_bare, "full": run_full}, steps)


def bench_pieces(clf, layer, batch, steps):
    """The step built up piece by piece (see the module docstring)."""
    import tensorflow as tf
    from tfrestore import engine as E
    opt, run_bare = _setup(clf, layer, batch)
    obj, param, i, n = opt.objective, opt.param, tf.constant(0), tf.constant(opt.steps)
    feat = obj.terms[0]

    def grad_of(loss_fn):
        @tf.function
        def g():
            with tf.GradientTape() as tape:
                loss = loss_fn()
            return tape.gradient(loss, param.variables)[0]
        return lambda: g().numpy()

    def net_loss(jit):
        rgb = param.to_rgb()
        seen = E.apply_transforms(opt.transforms, rgb, i, n) if jit else rgb
        return tf.reduce_sum(feat(obj.model(seen, training=False)))

    cbs = opt.callbacks(verbose=False)
    fns = {"bare forward + backward": run_bare,
           "feature loss through the parameterization": grad_of(lambda: net_loss(False)),
           "+ jitter": grad_of(lambda: net_loss(True)),
           "+ image priors (the objective)": grad_of(
               lambda: tf.reduce_sum(opt._loss(i, n)[0])),
           "+ optimizer update and projection (engine step)":
               lambda: opt.engine.step_fn(i, n)[0].numpy(),
           "engine loop with the standard callbacks, per step (10-step runs)":
               lambda: opt.engine.run(10, cbs)}
    t = _time_blocks(fns, steps)
    k = list(fns)[-1]
    t[k] = (t[k][0] / 10, t[k][1] / 10)
    return t


def main(argv):
    del argv
    from tfrestore.classifiers import load_classifier
    from tfrestore.io import atomic_write
    configs = [("vgg16", "conv3_3"), ("vgg16", "pool5"), ("alexnet", "conv5"),
               (FLAGS.mobilenet, FLAGS.mobilenet_layer)]
    rows, cache = [], {}

    def classifier(net):
        if net not in cache:
            cache[net] = (load_classifier(net) if "tflite" in net
                          else load_classifier(net, weights="random", seed=0))
        return cache[net]

    pieces = []

    def render():
        lines = [f"# Pre-image optimisation step cost\n\nCommand: `nice -n 10 python "
                 f"{' '.join(sys.argv)}`\n\nMedian of {FLAGS.steps} timed steps (after 3 "
                 f"warm-up) per variant, interleaved in blocks of {FLAGS.block}, one process, "
                 f"{os.cpu_count()} CPU cores shared with other jobs (load average in the last "
                 f"column). full = mv2016 step (feature loss, range "
                 f"prior, TV, B+ projection, jitter T=4, Adam); bare = forward + backward of the "
                 f"same cut network. Wall-time ratios swing with the load; the CPU-time ratio "
                 f"(this process's user + system time) is the load-independent one. "
                 f"Goal: ratio <= 1.05.\n",
                 "| network | layer | input | batch | bare (ms/step) | full (ms/step) | ratio | "
                 "bare CPU (ms) | full CPU (ms) | CPU ratio | load |",
                 "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4] * 1e3:.1f} | "
                         f"{r[5] * 1e3:.1f} | {r[6]:.3f} | {r[7] * 1e3:.1f} | "
                         f"{r[8] * 1e3:.1f} | {r[9]:.3f} | {r[10]:.1f} |")
        for title, t in pieces:
            base = t["bare forward + backward"]
            lines += ["", title, "", "| what | wall (ms) | x bare | CPU (ms) | x bare |",
                      "|---|---|---|---|---|"]
            for k, (w, c) in t.items():
                lines.append(f"| {k} | {w * 1e3:.1f} | {w / base[0]:.3f} | {c * 1e3:.1f} | "
                             f"{c / base[1]:.3f} |")
        text = "\n".join(lines) + "\n"
        if FLAGS.output:   # after every row: a long run leaves its finished rows
            atomic_write(FLAGS.output, text)
        return text

    for spec in FLAGS.pieces:
        net, layer, batch = spec.split(":")
        net = FLAGS.mobilenet if net == "mobilenet" else net
        clf = classifier(net)
        t = bench_pieces(clf, layer, int(batch), FLAGS.steps)
        pieces.append((f"## Piece by piece: {clf.name} {layer}, batch {batch} (load "
                       f"{os.getloadavg()[0]:.1f})", t))
        print(render(), flush=True)
    for batch in [int(b) for b in FLAGS.batch]:
        for net, layer in configs:
            clf = classifier(net)
            t = bench_one(clf, layer, batch, FLAGS.steps)
            (bw, bc), (fw, fc) = t["bare"], t["full"]
            rows.append((clf.name, layer, clf.input_shape[0], batch, bw, fw, fw / bw, bc, fc,
                         fc / bc, os.getloadavg()[0]))
            print(f"{clf.name} {layer} batch {batch}: bare {bw * 1e3:.1f} ms, full "
                  f"{fw * 1e3:.1f} ms, ratio {fw / bw:.3f}; CPU {bc * 1e3:.1f} / "
                  f"{fc * 1e3:.1f} ms, ratio {fc / bc:.3f}", flush=True)
            render()
    print(render())


if __name__ == "__main__":
    app.run(main)
