"""Cost of a learned patch prior in an mv2016 step, and the accuracy of its estimates.

  nice -n 10 python bench/bench_prior_cost.py --output results/prior_cost_benchmark.md
  # a feature-map prior (on the classifier's maps at --at, as in "+ feature-map FoE"):
  nice -n 10 python bench/bench_prior_cost.py --at=Conv2d_0_0 --layer=expanded_conv_3_add \
      --prior=checkpoints/fmap/mnv2_Conv2d_0_0_1024.keras --strides=2,3 \
      --output=results/prior_cost_benchmark_fmap.md

Part 1 (time). The shared TFLite MobileNetV2 cut at --layer, one 224x224 image: a full
`PreimageOptimizer` mv2016 step (feature loss, range, TV, projection, jitter, Adam) without
a prior, and with the prior (--prior, weight 1e-6) attached to the image as

  exact, unfused G  every patch position, Σ_k α_k G(s_k) by element-wise TF kernels
                    (how `PatchPrior` evaluated its energy before; same numbers)
  exact             every patch position, `PatchPrior` as now (fused XLA expert sums)
  crop 0.3          `PriorTerm(crop=0.3)`: the prior on one random 30% crop per step
  grid s            `GridEstimate(stride=s)`: the stride-s grid with a random offset, ×s²

plus the parts of the exact prior alone (convolution forward, forward + backward to the
input, expert sums forward + backward on fixed responses) to show where the time goes.
Variants are timed interleaved: each round runs every variant once (rotated order); medians.
Grid variants are warmed up with 4·s² calls first (every offset seen; shapes do not depend
on the offset, so XLA compiles once, but the first calls of each offset are not timed).

Part 2 (accuracy, not timed). On --images (held-out ImageNet samples, 224x224) and on
uniform-noise images (what an inversion starts from), for each estimate: the relative bias
|mean Ê − E| / |E| (grid: mean over all s² offsets, exact by construction; crop: mean over
--crop_draws random crops), the relative standard deviation std(Ê) / |E|, and the relative
gradient error mean ‖∇Ê − ∇E‖ / ‖∇E‖ (the noise an optimisation step sees).
"""
import os
import time


from absl import app, flags

from tfrestore import cli

flags.DEFINE_string("classifier", "../shared/data/models/tf2_mobilenet_v2_1.0_224_ptq.tflite",
                    "TFLite MobileNetV2.")
flags.DEFINE_string("layer", "expanded_conv_5_add", "Layer inverted in the timed step.")
flags.DEFINE_string("prior", "checkpoints/foe_8x8x3_512.keras", "Patch prior.")
flags.DEFINE_string("at", "image", "Where the prior applies: image, or a layer whose feature "
                    "maps it models (shallower than --layer).")
flags.DEFINE_list("strides", ["4", "5", "6"], "Grid strides to time and evaluate.")
flags.DEFINE_integer("rounds", 9, "Interleaved timing rounds.")
flags.DEFINE_string("images", "results/splits/dev.txt", "Images for the accuracy part.")
flags.DEFINE_integer("limit", 4, "Images for the accuracy part (plus as many noise images).")
flags.DEFINE_integer("crop_draws", 32, "Random crops per image for the crop estimate.")
flags.DEFINE_string("output", "results/prior_cost_benchmark.md", "Markdown table.")
flags.DEFINE_integer("seed", 0, "Seed of images, crops and offsets.")
FLAGS = flags.FLAGS


def _unfused_energy(prior):
    import tensorflow as tf
    return lambda x: tf.reduce_sum(prior.energy_map(x), axis=[1, 2])


def _prior_inputs(clf, images):
    """What the prior sees of RGB `images`: the images, or the feature maps at --at."""
    import numpy as np
    images = np.asarray(images, np.float32)
    return images if FLAGS.at == "image" else clf.features(images, FLAGS.at)[FLAGS.at]


def timing(clf, prior, strides, rounds, seed):
    import numpy as np
    import tensorflow as tf

    from tfrestore.inversion import PreimageOptimizer, get_settings
    from tfrestore.inversion.objectives import PriorTerm
    from tfrestore.priors.grid import GridEstimate
    rng = np.random.default_rng(seed)
    img = rng.uniform(0, 255, (1,) + clf.input_shape).astype(np.float32)
    # The estimates are attached by hand below: the settings' own (prior_grid) are off.
    settings = get_settings("mv2016", clf, FLAGS.layer, jitter=4, prior_grid=1,
                            prior_grid_maps=1)
    fns = {"none": None, "exact, unfused G": _unfused_energy(prior), "exact": prior,
           "crop 0.3": "crop"}
    for s in strides:
        fns[f"grid {s}"] = GridEstimate(prior, s, seed=seed)
    t, total = tf.constant(4, tf.int32), tf.constant(settings.steps, tf.int32)
    runs = {}
    for name, fn in fns.items():
        terms = []
        if fn == "crop":
            terms = [PriorTerm(prior, at=FLAGS.at, weight=1e-6, name="prior", crop=0.3,
                               seed=seed)]
        elif fn is not None:
            terms = [PriorTerm(fn, at=FLAGS.at, weight=1e-6, name="prior")]
        opt = PreimageOptimizer(clf, img, settings, extra_terms=terms)
        runs[name] = (lambda o=opt: o.engine.step_fn(t, total)[0].numpy())

    # Parts of the exact prior on its own.
    x = tf.Variable(_prior_inputs(clf, img))
    k, b = (tf.constant(v) for v in prior.kernel_and_bias())
    s_fixed = tf.constant(prior.responses(x))
    dy = tf.constant(rng.standard_normal(s_fixed.shape).astype(np.float32))

    @tf.function
    def conv_fwd():
        return tf.reduce_sum(tf.nn.conv2d(x, k, 1, "VALID"))

    @tf.function
    def conv_fwd_bwd():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.nn.conv2d(x, k, 1, "VALID") * dy)
        return tape.gradient(loss, x)

    def sums_of(fn):
        @tf.function
        def f():
            with tf.GradientTape() as tape:
                tape.watch(s_fixed)
                loss = tf.reduce_sum(fn(s_fixed))
            return tape.gradient(loss, s_fixed)
        return f

    g_plain = sums_of(lambda s: tf.reduce_sum(prior.expert.G(s), axis=[1, 2]))
    g_fused = sums_of(prior.expert.sum_G)
    runs["part: conv forward"] = lambda: conv_fwd().numpy()
    runs["part: conv forward+backward"] = lambda: conv_fwd_bwd().numpy()
    runs["part: expert sums fwd+bwd, unfused"] = lambda: g_plain().numpy()
    runs["part: expert sums fwd+bwd, fused"] = lambda: g_fused().numpy()

    names = list(runs)
    for n in names:
        # Warm up every grid offset (shapes are offset-independent; this only keeps the
        # first calls out of the timing).
        for _ in range(2 + (4 * int(n.split()[1]) ** 2 if n.startswith("grid") else 0)):
            runs[n]()
    times = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            runs[n]()
            times[n].append(time.perf_counter() - t0)
        print(f"round {r + 1}/{rounds}", flush=True)
    return {n: float(np.median(v)) for n, v in times.items()}


def accuracy(prior, images, strides, crop_draws, seed):
    """{estimate: (bias, rel std, rel grad err)} averaged over `images`."""
    import numpy as np
    import tensorflow as tf

    from tfrestore.inversion.objectives import PriorTerm
    from tfrestore.priors.grid import GridEstimate

    def value_grad(fn, x):
        x = tf.constant(x[None])
        with tf.GradientTape() as tape:
            tape.watch(x)
            e = tf.reduce_sum(fn(x))
        return float(e), tape.gradient(e, x).numpy().astype(np.float64)

    out = {}
    per = {}
    for i, img in enumerate(images):
        e, g = value_grad(prior, img)
        gn = np.linalg.norm(g)
        ests = {}
        for s in strides:
            est = GridEstimate(prior, s)
            ests[f"grid {s}"] = [value_grad(lambda t, o=(oy, ox): est.grid_energy(t, o), img)
                                 for oy in range(s) for ox in range(s)]
        term = PriorTerm(prior, crop=0.3, seed=seed + i)
        ests["crop 0.3"] = [value_grad(term, img) for _ in range(crop_draws)]
        for name, vals in ests.items():
            es = np.array([v[0] for v in vals])
            gerr = np.mean([np.linalg.norm(v[1] - g) / gn for v in vals])
            per.setdefault(name, []).append((abs(es.mean() - e) / abs(e), es.std() / abs(e),
                                             gerr))
    for name, rows in per.items():
        out[name] = tuple(float(np.mean([r[j] for r in rows])) for j in range(3))
    return out


def main(argv):
    del argv
    import numpy as np

    from tfrestore.classifiers import load_classifier
    from tfrestore.data.images import load_images
    from tfrestore.io import atomic_write, environment_info
    from tfrestore.priors import load_prior
    strides = [int(s) for s in FLAGS.strides]
    clf = load_classifier(FLAGS.classifier)
    prior = load_prior(FLAGS.prior)
    t = timing(clf, prior, strides, FLAGS.rounds, FLAGS.seed)
    base = t["none"]
    for n, v in t.items():
        print(f"{n}: {v * 1e3:.1f} ms" + ("" if n.startswith("part") or n == "none" else
                                         f" (+{(v - base) / base * 100:.0f}%)"), flush=True)
    loaded = load_images(FLAGS.images, clf.input_size, limit=FLAGS.limit)
    real = np.stack([np.asarray(im, np.float32) for im in loaded.images])
    rng = np.random.default_rng(FLAGS.seed)
    noise = rng.uniform(0, 255, real.shape).astype(np.float32)
    real, noise = list(_prior_inputs(clf, real)), list(_prior_inputs(clf, noise))
    acc = {"ImageNet": accuracy(prior, real, strides, FLAGS.crop_draws, FLAGS.seed),
           "noise": accuracy(prior, noise, strides, FLAGS.crop_draws, FLAGS.seed)}
    env = environment_info()
    load = os.getloadavg()
    where = "the image" if FLAGS.at == "image" else f"the feature maps at `{FLAGS.at}`"
    h, w = real[0].shape[:2]
    positions = f"{h - prior.patch_size[0] + 1}x{w - prior.patch_size[1] + 1}"
    lines = [f"# Learned patch prior on {where}: cost in an mv2016 step and accuracy of "
             "estimates",
             "", "Command:", "", "```", cli.command_line(), "```", "",
             f"Prior `{FLAGS.prior}` ({prior!r}) on {where}, weight 1e-6; MobileNetV2 "
             f"(`{FLAGS.classifier}`, dequantised) cut at `{FLAGS.layer}`; one 224x224 image; "
             f"step = one compiled engine step (`engine.step_fn`) with the mv2016 settings "
             f"(jitter 4, Adam). "
             f"Median of {FLAGS.rounds} interleaved rounds after two warm-up calls. CPU only, "
             f"TensorFlow {env['tensorflow']}, {os.cpu_count()} cores shared with other jobs "
             f"(load average at the end {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}): absolute "
             "times are noisy, compare within the table.", "",
             "| variant | ms per step | added to the mv2016 step |", "|---|---|---|"]
    for n, v in t.items():
        if n.startswith("part"):
            continue
        lines.append(f"| {n} | {v * 1e3:.1f} | "
                     + ("–" if n == "none" else f"+{(v - base) / base * 100:.0f}%") + " |")
    lines += ["", f"Parts of the exact prior alone (one image, {positions} positions x "
              f"{prior.n_experts} experts):", "", "| part | ms |", "|---|---|"]
    for n, v in t.items():
        if n.startswith("part"):
            lines.append(f"| {n[6:]} | {v * 1e3:.1f} |")
    lines += ["", f"Accuracy (not timed): {len(real)} images of `{FLAGS.images}` and as many "
              f"uniform-noise images, 224x224 (the prior on {where}, the gradient with respect "
              "to its input); grid: all s² offsets (the bias column checks the "
              f"identity mean = exact), crop: {FLAGS.crop_draws} random crops per image. "
              "Columns are means over the images.", "",
              "| images | estimate | relative bias of the mean | relative std of Ê | "
              "mean relative gradient error |", "|---|---|---|---|---|"]
    for kind, res in acc.items():
        for name, (bias, std, gerr) in res.items():
            lines.append(f"| {kind} | {name} | {bias:.1e} | {std:.2e} | {gerr:.2f} |")
    atomic_write(FLAGS.output, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    app.run(main)
