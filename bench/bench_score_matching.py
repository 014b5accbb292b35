"""Score-matching training throughput: O(T·N·d) form vs the seed's pairwise O(N²) form.

  nice -n 10 python bench/bench_score_matching.py --output results/score_matching_throughput.md

One training step = objective + gradients w.r.t. the filters and weights (unit-norm
parametrisation, as in training), batch T patches, inside a tf.function. Each
configuration is warmed up once, then timed over repeated steps until --min_seconds have
passed (at least one step), so slow configurations are timed over fewer steps.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

flags.DEFINE_list("experts", ["512", "2048", "6000"], "N values.")
flags.DEFINE_list("dims", ["191", "3000"], "d values.")
flags.DEFINE_integer("batch_size", 250, "T, patches per step.")
flags.DEFINE_float("min_seconds", 3.0, "Time each configuration for at least this long.")
flags.DEFINE_string("output", "results/score_matching_throughput.md", "Markdown table.")
flags.DEFINE_integer("seed", 0, "Seed of the random filters and data.")
FLAGS = flags.FLAGS


def _time_step(form, n, d, t, seed, min_seconds):
    import numpy as np
    import tensorflow as tf

    from tfrestore.priors import STUDENT_T, score_matching_loss, score_matching_pairwise
    loss_fn = score_matching_loss if form == "O(TNd)" else score_matching_pairwise
    rng = np.random.default_rng(seed)
    w = tf.Variable(rng.standard_normal((d, n)).astype(np.float32))
    a = tf.Variable(np.zeros(n, np.float32))
    x = tf.constant(rng.standard_normal((t, d)).astype(np.float32))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            wn = w / tf.norm(w, axis=0, keepdims=True)
            j = loss_fn(x, wn, tf.nn.softplus(a), STUDENT_T)[0]
        return j, tape.gradient(j, [w, a])

    step()  # trace + warm-up
    k, t0 = 0, time.perf_counter()
    while True:
        out = step()
        out[0].numpy()
        k += 1
        if time.perf_counter() - t0 >= min_seconds:
            break
    dt = (time.perf_counter() - t0) / k
    return dt, k, float(out[0])


def main(argv):
    del argv
    import tensorflow as tf

    from tfrestore.io import atomic_write, environment_info
    rows = []
    for d in [int(v) for v in FLAGS.dims]:
        for n in [int(v) for v in FLAGS.experts]:
            res = {}
            for form in ("O(TNd)", "pairwise O(N²)"):
                try:
                    dt, k, j = _time_step(form, n, d, FLAGS.batch_size, FLAGS.seed,
                                          FLAGS.min_seconds)
                    res[form] = (dt, k, j)
                except tf.errors.ResourceExhaustedError:
                    res[form] = None
                print(f"d={d} N={n} {form}: " + (f"{FLAGS.batch_size / dt:.0f} patches/s "
                      f"({dt * 1e3:.1f} ms/step over {k} steps, J={j:.4g})"
                      if res[form] else "out of memory"), flush=True)
            rows.append((d, n, res))
    env = environment_info()
    lines = ["# Score-matching training throughput", "", "Command:", "", "```",
             "nice -n 10 python " + " ".join(sys.argv), "```", "",
             f"Batch T = {FLAGS.batch_size}; Student-t experts; one step = objective and "
             "gradients (unit-norm filters, softplus weights) in a tf.function; CPU only, "
             f"TensorFlow {env['tensorflow']}, {os.cpu_count()} cores shared with other jobs "
             "(absolute numbers are noisy; the ratio is the point). J is printed to show both "
             "forms compute the same objective.", "",
             "| d | N | O(T·N·d): patches/s | ms/step | pairwise O(N²): patches/s | ms/step | "
             "speed-up | J (both) |", "|---|---|---|---|---|---|---|---|"]
    for d, n, res in rows:
        a, b = res["O(TNd)"], res["pairwise O(N²)"]
        fa = f"{FLAGS.batch_size / a[0]:.0f} | {a[0] * 1e3:.1f}" if a else "OOM | –"
        fb = f"{FLAGS.batch_size / b[0]:.0f} | {b[0] * 1e3:.1f}" if b else "OOM | –"
        sp = f"{b[0] / a[0]:.1f}x" if a and b else "–"
        jj = f"{a[2]:.4g} / {b[2]:.4g}" if a and b else "–"
        lines.append(f"| {d} | {n} | {fa} | {fb} | {sp} | {jj} |")
    atomic_write(FLAGS.output, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    app.run(main)
