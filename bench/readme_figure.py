"""The figure at the top of README.md: one bundled photograph inverted from several depths
of the bundled ImageNet MobileNetV2 (image | reconstruction | difference per depth).

  nice -n 10 python bench/readme_figure.py            # writes results/readme_figure.png/.json

Needs nothing outside the package (the network and the photograph are bundled). Each depth's
reconstruction is kept in --work_dir as it finishes, so an interrupted run resumes where it
stopped; the figure and its JSON (settings, steps, seconds and metrics per depth) are written
at the end. Budget: the mv2016 preset with its schedule compressed to --steps (the paper uses
3500), seed --seed, one image, on whatever CPU runs it.
"""
import os
import time


from absl import app, flags

flags.DEFINE_string("image", "chelsea", "A scikit-image photograph name or an image file.")
flags.DEFINE_list("layers", ["Conv2d_0_0", "expanded_conv_3_add", "expanded_conv_6_add",
                             "expanded_conv_13_add"],
                  "Layers of the bundled MobileNetV2 (112, 56, 28 and 14 px maps).")
flags.DEFINE_string("preset", "mv2016", "Inversion preset.")
flags.DEFINE_integer("steps", 400, "Optimisation steps per depth (the paper: 3500).")
flags.DEFINE_integer("seed", 0, "Seed of the noise start and the jitter.")
flags.DEFINE_string("output", "results/readme_figure.png", "Figure (a .json goes beside it).")
flags.DEFINE_string("work_dir", "runs/readme_figure", "Per-depth results, for resuming.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import numpy as np
    from tfrestore.classifiers import DEFAULT_CLASSIFIER, load_classifier
    from tfrestore.cli import command_line
    from tfrestore.data import load_images
    from tfrestore.inversion import get_settings, invert
    from tfrestore.io import environment_info, save_npz, write_json
    from tfrestore.metrics import evaluate_reconstructions
    from tfrestore.plotting.figures import save_reconstruction_grid

    clf = load_classifier(DEFAULT_CLASSIFIER)
    image = load_images([FLAGS.image], clf.input_size).images  # [1, 224, 224, 3]
    recs, rows = [], []
    for layer in FLAGS.layers:
        settings = get_settings(FLAGS.preset, clf, layer, steps=FLAGS.steps, seed=FLAGS.seed)
        part = os.path.join(FLAGS.work_dir, f"{FLAGS.image}_{layer}_{FLAGS.preset}_"
                                            f"{FLAGS.steps}_{FLAGS.seed}.npz")
        if os.path.exists(part):
            saved = np.load(part)
            rec, steps, seconds = saved["reconstruction"], int(saved["steps"]), \
                float(saved["seconds"])
            print(f"{layer}: resumed from {part}", flush=True)
        else:
            t = time.time()
            res = invert(clf, image, settings, log_every=max(1, FLAGS.steps // 4))
            rec, steps, seconds = res.reconstructions, res.steps, time.time() - t
            save_npz(part, reconstruction=rec, steps=steps, seconds=seconds)
        metrics = {k: float(np.mean(v))
                   for k, v in evaluate_reconstructions(clf, image, rec, layer).items()}
        print(f"{layer}: {steps} steps, {seconds:.0f} s, {metrics}", flush=True)
        recs.append(rec[0])
        rows.append(dict(layer=layer, shape=list(clf.output_shape(layer)), steps=steps,
                         seconds=round(seconds, 1), metrics=metrics,
                         settings=settings.as_dict()))
    titles = [f"{r['layer']}\n{r['shape'][0]}x{r['shape'][1]}x{r['shape'][2]}, "
              f"SSIM {r['metrics']['ssim']:.2f}" for r in rows]
    save_reconstruction_grid(
        FLAGS.output, image[0], {"reconstruction": recs}, titles, diff=True,
        title=f"{clf.name} (bundled), {FLAGS.preset} preset, "
              f"{'/'.join(sorted({str(r['steps']) for r in rows}))} steps per depth")
    meta = dict(command=command_line(), classifier=clf.describe(), image=FLAGS.image,
                preset=FLAGS.preset, steps=FLAGS.steps, seed=FLAGS.seed, depths=rows,
                environment=environment_info())
    write_json(os.path.splitext(FLAGS.output)[0] + ".json", meta)
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
