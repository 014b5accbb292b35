"""Score-matching training throughput: the training step vs the seed's pairwise O(N²) form.

  nice -n 10 python bench/bench_score_matching.py --output results/score_matching_throughput.md

One training step = objective + gradients w.r.t. the raw filters and weights of unit-norm
filters (as in training), batch T patches. Forms, all in the same process:

  train        what `train_prior` runs: `value_and_gradients` (O(T·N·d), normalisation
               folded into the responses, objective + gradients compiled by XLA)
  O(TNd) plain the O(T·N·d) objective on explicitly normalised filters, tf.function
               without XLA (the training step before this change)
  pairwise     the seed's pairwise form, same harness, tf.function without XLA
  pairwise XLA the same compiled by XLA (so that the speed-up is not XLA's alone)

Each configuration warms every form up once, then times --rounds rounds, each round
calling every form once in rotated order (so load from other processes hits all alike);
the table gives medians and ratios of medians.
"""
import os
import sys
import time


from absl import app, flags

flags.DEFINE_list("experts", ["512", "2048", "6000"], "N values.")
flags.DEFINE_list("dims", ["191", "3000"], "d values.")
flags.DEFINE_integer("batch_size", 250, "T, patches per step.")
flags.DEFINE_integer("rounds", 5, "Interleaved timing rounds per configuration.")
flags.DEFINE_string("output", "results/score_matching_throughput.md", "Markdown table.")
flags.DEFINE_integer("seed", 0, "Seed of the random filters and data.")
FLAGS = flags.FLAGS

FORMS = ("train", "O(TNd) plain", "pairwise", "pairwise XLA")


def _steps(n, d, t, seed):
    import numpy as np
    import tensorflow as tf

    from tfrestore.priors import STUDENT_T, score_matching_loss, score_matching_pairwise
    from tfrestore.priors.score_matching import value_and_gradients
    rng = np.random.default_rng(seed)
    w = tf.Variable(rng.standard_normal((d, n)).astype(np.float32))
    a = tf.Variable(np.zeros(n, np.float32))
    x = tf.constant(rng.standard_normal((t, d)).astype(np.float32))
    alpha = lambda: tf.nn.softplus(a)  # noqa: E731

    def taped(loss_fn, jit):
        @tf.function(jit_compile=jit)
        def step():
            with tf.GradientTape() as tape:
                wn = w / tf.sqrt(tf.reduce_sum(tf.square(w), axis=0, keepdims=True) + 1e-12)
                j = loss_fn(x, wn, alpha(), STUDENT_T)[0]
            return j, tape.gradient(j, [w, a])
        return step

    train = value_and_gradients(lambda: tf.convert_to_tensor(w), alpha, STUDENT_T, [w, a])
    fns = {"train": lambda: (lambda out: (out[0][0], out[1]))(train(x)),
           "O(TNd) plain": taped(score_matching_loss, False),
           "pairwise": taped(score_matching_pairwise, False),
           "pairwise XLA": taped(score_matching_pairwise, True)}

    def run(f):
        j, g = f()
        g[0].numpy()
        return float(j)
    return {k: (lambda f=f: run(f)) for k, f in fns.items()}


def main(argv):
    del argv
    import numpy as np
    import tensorflow as tf

    from tfrestore.io import atomic_write, environment_info
    rows = []
    for d in [int(v) for v in FLAGS.dims]:
        for n in [int(v) for v in FLAGS.experts]:
            try:
                steps = _steps(n, d, FLAGS.batch_size, FLAGS.seed)
                js = {k: f() for k, f in steps.items()}  # trace, compile, warm up
                times = {k: [] for k in FORMS}
                for r in range(FLAGS.rounds):
                    for k in FORMS[r % len(FORMS):] + FORMS[:r % len(FORMS)]:
                        t0 = time.perf_counter()
                        steps[k]()
                        times[k].append(time.perf_counter() - t0)
                med = {k: float(np.median(v)) for k, v in times.items()}
            except tf.errors.ResourceExhaustedError:
                med, js = None, None
            rows.append((d, n, med, js))
            if med:
                print(f"d={d} N={n}: " + ", ".join(f"{k} {med[k] * 1e3:.0f} ms" for k in FORMS)
                      + f"; pairwise/train {med['pairwise'] / med['train']:.1f}x, "
                      f"pairwise XLA/train {med['pairwise XLA'] / med['train']:.1f}x", flush=True)
            else:
                print(f"d={d} N={n}: out of memory", flush=True)
    env = environment_info()
    load = os.getloadavg()
    lines = ["# Score-matching training throughput", "", "Command:", "", "```",
             "nice -n 10 python " + " ".join(sys.argv), "```", "",
             f"Batch T = {FLAGS.batch_size}; Student-t experts; one step = objective and "
             "gradients of unit-norm filters and softplus weights. *train* = the step "
             "`train_prior` runs (O(T·N·d), normalisation folded into the responses, XLA); "
             "*plain* = the O(T·N·d) objective on normalised filters without XLA (the "
             "previous training step); *pairwise* = the seed's O(N²) form, without and with "
             f"XLA. Median of {FLAGS.rounds} interleaved rounds after one warm-up call; CPU "
             f"only, TensorFlow {env['tensorflow']}, {os.cpu_count()} cores shared with other "
             f"jobs (load average at the end {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}): "
             "absolute numbers are noisy, the ratios are the point. J (train / pairwise) shows "
             "both compute the same objective.", "",
             "| d | N | train ms | plain ms | pairwise ms | pairwise XLA ms | "
             "pairwise / train | pairwise XLA / train | plain / train | J (train / pairwise) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for d, n, med, js in rows:
        if not med:
            lines.append(f"| {d} | {n} | OOM | | | | | | | |")
            continue
        lines.append(
            f"| {d} | {n} | {med['train'] * 1e3:.1f} | {med['O(TNd) plain'] * 1e3:.1f} | "
            f"{med['pairwise'] * 1e3:.1f} | {med['pairwise XLA'] * 1e3:.1f} | "
            f"{med['pairwise'] / med['train']:.1f}x | {med['pairwise XLA'] / med['train']:.1f}x | "
            f"{med['O(TNd) plain'] / med['train']:.2f}x | {js['train']:.4g} / {js['pairwise']:.4g} |")
    atomic_write(FLAGS.output, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    app.run(main)
