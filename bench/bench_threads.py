"""Throughput of concurrent jobs on a shared CPU by TensorFlow thread-pool size.

  nice -n 10 python bench/bench_threads.py --procs=2 --threads=0,1 --output results/threads_benchmark.md

Long runs here share 2 cores: several study cells, an inverter and a DAE training at once.
Each TensorFlow process sizes its pools for the whole machine, so k processes run
k x (intra + inter) busy threads on 2 cores. This starts --procs identical worker processes
at once, each doing the study's hot step (MobileNetV2 forward and backward to --layer on a
chunk of --batch images, compiled with tf.function) for --seconds, with the intra- and
inter-op pools set to each value of --threads (0 = TensorFlow's default) through
TFRESTORE_THREADS, and reports steps per second summed over the processes. Variants run
one after another in one invocation (ratios, not absolute speeds, are the result; other
jobs on the machine add noise: the load average is printed).
"""
import json
import os
import subprocess
import sys
import time

from absl import app, flags

flags.DEFINE_integer("procs", 2, "Concurrent worker processes.")
flags.DEFINE_list("threads", ["0", "1"], "Pool sizes to compare (0 = TensorFlow's default).")
flags.DEFINE_float("seconds", 40.0, "Timed seconds per worker (after warm-up).")
flags.DEFINE_string("layer", "expanded_conv_5_add", "MobileNetV2 layer of the step.")
flags.DEFINE_integer("batch", 4, "Images per step (the study's chunk).")
flags.DEFINE_string("output", "", "Markdown table (empty: print only).")
flags.DEFINE_bool("worker", False, "Internal: run one worker and print its steps/s.")
FLAGS = flags.FLAGS


def worker():
    import numpy as np
    import tensorflow as tf
    import tfrestore  # noqa: F401  (applies TFRESTORE_THREADS)
    from tfrestore.classifiers import load_classifier
    clf = load_classifier("mobilenet_v2_tflite")
    model = clf.submodel(FLAGS.layer)
    x = tf.Variable(np.random.default_rng(0).uniform(-1, 1, (FLAGS.batch, 224, 224, 3))
                    .astype(np.float32))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(model(x)))
        return tape.gradient(loss, x)

    step(), step()
    n, t0 = 0, time.time()
    while time.time() - t0 < FLAGS.seconds:
        step().numpy()
        n += 1
    print(json.dumps({"steps_per_s": n / (time.time() - t0)}), flush=True)


def main(argv):
    del argv
    if FLAGS.worker:
        return worker()
    rows = []
    for t in FLAGS.threads:
        env = dict(os.environ, TFRESTORE_THREADS=t)
        cmd = [sys.executable, __file__, "--worker", f"--seconds={FLAGS.seconds}",
               f"--layer={FLAGS.layer}", f"--batch={FLAGS.batch}"]
        procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
                 for _ in range(FLAGS.procs)]
        rates = [json.loads(p.communicate()[0].strip().splitlines()[-1])["steps_per_s"]
                 for p in procs]
        rows.append((t, rates))
        print(f"threads={t}: {sum(rates):.3f} steps/s in all "
              f"({', '.join(f'{r:.3f}' for r in rates)})", flush=True)
    base = sum(rows[0][1])
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    md = ["# Concurrent jobs by TensorFlow pool size", "",
          f"`python bench/bench_threads.py --procs={FLAGS.procs} "
          f"--threads={','.join(FLAGS.threads)} --seconds={FLAGS.seconds:g} "
          f"--layer={FLAGS.layer} --batch={FLAGS.batch}`", "",
          f"{FLAGS.procs} identical processes at once, each MobileNetV2 forward + backward to "
          f"{FLAGS.layer} on {FLAGS.batch} images for {FLAGS.seconds:g} s; {os.cpu_count()} "
          f"CPUs; load average at the end {load}.", "",
          "| TFRESTORE_THREADS | steps/s, all processes | per process | vs first row |",
          "|---|---|---|---|"]
    for t, rates in rows:
        md.append(f"| {t} | {sum(rates):.3f} | {', '.join(f'{r:.3f}' for r in rates)} | "
                  f"{sum(rates) / base:.2f} |")
    print("\n".join(md))
    if FLAGS.output:
        from tfrestore.io import atomic_write
        atomic_write(FLAGS.output, "\n".join(md) + "\n")


if __name__ == "__main__":
    app.run(main)
