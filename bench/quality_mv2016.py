"""Quality of M&V 2016 pre-images: mean SSIM, PSNR, MSE and feature error per layer.

  nice -n 10 python bench/quality_mv2016.py --images=../shared/data/imagenet_samples \
      --count=10 --steps=150 --output=results/mv2016_quality.md

Networks: the shared ImageNet MobileNetV2 (TFLite, dequantised; real weights) at 4
depths, and random-weight AlexNet (seed 0) at conv1-conv5. The mv2016 preset with its
schedule compressed to --steps (the papers use 3500; see the table header). The table
is rewritten after every layer, so an interrupted run still leaves its rows.
"""
import os
import sys
import time


from absl import app, flags

flags.DEFINE_string("images", "../shared/data/imagenet_samples", "Folder of images.")
flags.DEFINE_integer("count", 10, "Images (the first COUNT files by name).")
flags.DEFINE_integer("steps", 150, "Optimisation steps per layer (papers: 3500).")
flags.DEFINE_integer("seed", 0, "Seed of the noise start and the jitter.")
flags.DEFINE_string("mobilenet", "../shared/data/models/tf2_mobilenet_v2_1.0_224_ptq.tflite",
                    "TFLite MobileNetV2.")
flags.DEFINE_list("mobilenet_layers", ["Conv2d_0_0", "expanded_conv_3_add",
                                       "expanded_conv_6_add", "expanded_conv_13_add"],
                  "MobileNetV2 layers (112, 56, 28 and 14 px).")
flags.DEFINE_list("alexnet_layers", ["conv1", "conv2", "conv3", "conv4", "conv5"],
                  "AlexNet layers (random weights).")
flags.DEFINE_string("output", "results/mv2016_quality.md", "Markdown table.")
flags.DEFINE_string("runs_dir", None, "If set, write each layer's run folder here.")
FLAGS = flags.FLAGS


def _table(rows, header):
    lines = [header, "", "| network | weights | layer | C | T | steps | MSE | PSNR (dB) | "
             "SSIM | feature error | seconds |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['net']} | {r['weights']} | {r['layer']} | {r['C']:g} | {r['T']} | "
                     f"{r['steps']} | {r['mse']:.0f} | {r['psnr']:.2f} | {r['ssim']:.3f} | "
                     f"{r['feature_error']:.3f} | {r['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    import numpy as np
    from tfrestore.classifiers import load_classifier
    from tfrestore.data import list_image_files, load_images
    from tfrestore.io import atomic_write
    from tfrestore.inversion import get_settings, invert, write_run
    from tfrestore.metrics import evaluate_reconstructions
    files = list_image_files(FLAGS.images)[:FLAGS.count]
    header = (f"# M&V 2016 pre-image quality\n\nCommand: `nice -n 10 python "
              f"{' '.join(sys.argv)}`\n\n**Reduced run: {FLAGS.steps} Adam steps per layer "
              f"(the paper uses 3500; lr drops and jitter stop at the same fractions of the "
              f"run), {len(files)} images** ({', '.join(os.path.basename(f) for f in files)}), "
              f"batch of all images, seed {FLAGS.seed}, 2 shared CPU cores. "
              f"Means over the images; MSE on 0-255, feature error = "
              f"||phi(x)-phi0||^2/||phi0||^2 at the inverted layer.")
    rows = []
    jobs = [(FLAGS.mobilenet, "ImageNet (TFLite, dequantised)", l)
            for l in FLAGS.mobilenet_layers]
    jobs += [("alexnet", "random (seed 0)", l) for l in FLAGS.alexnet_layers]
    cache = {}
    for net, wdesc, layer in jobs:
        if net not in cache:
            cache[net] = (load_classifier(net, weights="random", seed=0) if net == "alexnet"
                          else load_classifier(net))
        clf = cache[net]
        imgs = load_images(files, clf.input_size).images
        s = get_settings("mv2016", clf, layer, steps=FLAGS.steps, seed=FLAGS.seed)
        t = time.time()
        res = invert(clf, imgs, s, log_every=max(1, FLAGS.steps // 5))
        m = evaluate_reconstructions(clf, imgs, res.reconstructions, layer)
        if FLAGS.runs_dir:
            write_run(os.path.join(FLAGS.runs_dir, f"{clf.name}_{layer}"), imgs,
                      res.reconstructions, files, dict(s.as_dict(), **clf.describe()), m,
                      title=f"{clf.name} {layer} mv2016 ({FLAGS.steps} steps)")
        rows.append(dict(net=clf.name, weights=wdesc, layer=layer, C=s.feature_weight,
                         T=s.jitter, steps=res.steps, seconds=time.time() - t,
                         **{k: float(np.mean(v)) for k, v in m.items()}))
        print(rows[-1], flush=True)
        atomic_write(FLAGS.output, _table(rows, header))
    print(_table(rows, header))


if __name__ == "__main__":
    app.run(main)
