"""How much a layer sees a uniform colour shift: why pre-images come out with colour casts.

For each layer, the normalised feature error (the study's metric, ||φ(x') − φ(x)||² /
||φ(x)||² per image, mean over images) that a shift of every pixel by `--shift` grey levels
causes, along grey (1, 1, 1)/√3 and along the colour directions the layer sees least and
most. Those directions are the singular vectors of the layer's mean response to a unit
constant-colour change (`tfrestore.stats.dc_colour_response`: one column per RGB channel,
measured at mid grey on interior positions). A shift whose feature error is below the error
at which a reconstruction stops (the study's feature error column) is invisible to the
feature-matching term: the priors and the initialisation decide it. Images are shifted unclipped, so the measure is of the
network, not of saturation.

  python bench/colour_sensitivity.py --output=results/colour_sensitivity.md
"""
from absl import flags

from tfrestore import cli

flags.DEFINE_string("classifier", "mobilenet_v2_tflite", "Classifier (cli name or file).")
flags.DEFINE_list("layers", ["Conv2d_0_0/lin", "Conv2d_0_0", "expanded_conv_3_add",
                             "expanded_conv_5_add", "expanded_conv_8_add",
                             "expanded_conv_12_add"], "Layers to measure.")
flags.DEFINE_string("images", "results/splits/dev.txt", "Development images.")
flags.DEFINE_integer("limit", 20, "Number of images.")
flags.DEFINE_float("shift", 20.0, "Size of the uniform shift in grey levels (0-255).")
flags.DEFINE_string("study", "results/study/mobilenet_v2.json", "Study results whose M&V "
                    "2016 feature errors are printed beside (empty: none).")
flags.DEFINE_string("output", None, "Markdown table to write (also printed).")
FLAGS = flags.FLAGS


@cli.exit_on_user_error
def main(argv):
    del argv
    import json
    import os

    import numpy as np

    from tfrestore.classifiers import load_classifier
    from tfrestore.data import load_images
    from tfrestore.io import atomic_write
    from tfrestore.metrics.features import normalised_feature_error
    from tfrestore.stats import dc_colour_response

    clf = load_classifier(FLAGS.classifier)
    size = clf.input_shape[0]
    images = np.asarray(load_images(FLAGS.images, size, limit=FLAGS.limit).images, np.float32)
    study = {}
    if FLAGS.study and os.path.exists(FLAGS.study):
        with open(FLAGS.study) as f:
            for cell in json.load(f)["cells"].values():
                if cell["method"] == "M&V 2016":
                    study[cell["layer"]] = float(np.mean(cell["per_image"]["feature_error"]))
    rows = []
    for layer in FLAGS.layers:
        def feats(x, layer=layer):
            return np.asarray(clf.features(np.asarray(x, np.float32), [layer])[layer])
        s, dirs = dc_colour_response(feats, size)
        target = feats(images)
        errs = []
        for d in (np.ones(3) / np.sqrt(3), dirs[0], dirs[-1]):
            shifted = feats(images + FLAGS.shift * d.astype(np.float32))
            errs.append(float(np.mean(normalised_feature_error(shifted, target))))
        reached = f"{study[layer]:.4f}" if layer in study else "–"
        rows.append(f"| {layer} | {' / '.join(f'{v:.3g}' for v in s)} | "
                    f"({', '.join(f'{v:+.2f}' for v in dirs[0])}) | "
                    + " | ".join(f"{e:.4f}" for e in errs) + f" | {reached} |")
        print(rows[-1], flush=True)
    md = ["# Colour sensitivity of the layers", "",
          f"`python bench/colour_sensitivity.py --classifier={FLAGS.classifier} "
          f"--images={FLAGS.images} --limit={FLAGS.limit} --shift={FLAGS.shift:g}`", "",
          f"{clf.name}; {len(images)} development images. Feature error "
          f"(||φ(x+δ) − φ(x)||² / ||φ(x)||², mean over images) of a uniform shift δ of {FLAGS.shift:g} grey levels "
          "along grey, along the colour direction the layer sees least (RGB, unit length) and "
          "along the one it sees most; singular values: mean response per grey level of "
          "constant colour, weakest to strongest. Last column: the mean feature error of the "
          "converged study's M&V 2016 reconstructions at that layer (20 test images).", "",
          "| layer | DC singular values | weakest colour direction | shift along grey | "
          "along weakest | along strongest | M&V 2016 feature error |",
          "|---|---|---|---|---|---|---|"] + rows + [""]
    text = "\n".join(md)
    print(text)
    if FLAGS.output:
        atomic_write(FLAGS.output, text)


if __name__ == "__main__":
    cli.run(main)
