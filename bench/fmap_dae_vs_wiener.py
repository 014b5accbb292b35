"""Feature-map DAEs against the simplest denoiser of the same maps: linear shrinkage per
channel, x̂ = y·v/(v + σ²) with v the channel's variance (in the DAE's normalised units).

A DAE prior whose denoising is worse than this linear map models the maps less well than a
Gaussian per channel; its gradient −(r(x) − x)/σ² is then a weak prior. Development images
only (never the test images); noise seeded.

  python bench/fmap_dae_vs_wiener.py --output=results/fmap_dae_vs_wiener.md
"""
from absl import flags

from tfrestore import cli

flags.DEFINE_list("daes", [
    "alexnet:random:conv1/lin:checkpoints/fmap/dae_alexnet_conv1_lin.keras",
    "alexnet:random:conv2/lin:checkpoints/fmap/dae_alexnet_conv2_lin.keras",
    "mobilenet_v2_tflite:imagenet:expanded_conv_3_add:checkpoints/fmap/dae_mnv2_expanded_conv_3_add.keras",
    "mobilenet_v2_tflite:imagenet:expanded_conv_5_add:checkpoints/fmap/dae_mnv2_expanded_conv_5_add.keras"],
    "NETWORK:WEIGHTS:LAYER:DAE.keras of each feature-map DAE (random weights: seed 0).")
flags.DEFINE_string("images", "results/splits/dev.txt", "Development images.")
flags.DEFINE_integer("limit", 8, "Number of images.")
flags.DEFINE_float("sigma", 0.5, "Noise std in units of each channel's std (the DAEs' σ).")
flags.DEFINE_integer("seed", 0, "Seed of the noise.")
flags.DEFINE_string("output", None, "Markdown table to write (also printed).")
FLAGS = flags.FLAGS


@cli.exit_on_user_error
def main(argv):
    del argv
    import numpy as np

    from tfrestore.classifiers import load_classifier
    from tfrestore.data import load_images
    from tfrestore.io import atomic_write
    from tfrestore.priors import load_prior
    rng = np.random.default_rng(FLAGS.seed)
    rows, classifiers = [], {}
    for spec in FLAGS.daes:
        parts = spec.split(":")
        if len(parts) != 4:
            raise ValueError(f"--daes '{spec}': give NETWORK:WEIGHTS:LAYER:DAE.keras.")
        net, weights, layer, path = parts
        if (net, weights) not in classifiers:
            classifiers[net, weights] = load_classifier(net, weights=weights, seed=0)
        clf = classifiers[net, weights]
        images = load_images(FLAGS.images, clf.input_size, limit=FLAGS.limit).images
        dae = load_prior(path).dae
        x = np.asarray(dae.normalise(clf.features(images, [layer])[layer]))
        y = x + FLAGS.sigma * rng.standard_normal(x.shape).astype(np.float32)
        mean, std = np.asarray(dae.norm_mean), np.asarray(dae.norm_std)
        v = np.mean(x ** 2, axis=(0, 1, 2))
        mse = {"noisy": np.mean((y - x) ** 2),
               "wiener": np.mean((y * v / (v + FLAGS.sigma ** 2) - x) ** 2),
               "dae": np.mean((np.asarray(dae.normalise(dae(mean + std * y))) - x) ** 2)}
        gain = {k: 10 * np.log10(mse["noisy"] / mse[k]) for k in ("wiener", "dae")}
        rows.append(f"| {net} ({weights}) | {layer} | `{path}` | {mse['noisy']:.4f} | "
                    f"{mse['wiener']:.4f} ({gain['wiener']:+.2f} dB) | {mse['dae']:.4f} "
                    f"({gain['dae']:+.2f} dB) |")
        print(rows[-1], flush=True)
    md = "\n".join([
        "# Feature-map DAEs against per-channel linear shrinkage", "",
        f"`{cli.command_line()}`", "",
        f"{FLAGS.limit} development images, noise σ = {FLAGS.sigma:g} (units of each channel's "
        f"std), seed {FLAGS.seed}. MSE in normalised units (gain over the noisy maps). "
        "Shrinkage: x̂ = y·v/(v + σ²) per channel, v the channel's mean square on these maps.",
        "", "| network | layer | DAE | noisy MSE | linear shrinkage | DAE |",
        "|---|---|---|---|---|---|"] + rows) + "\n"
    if FLAGS.output:
        atomic_write(FLAGS.output, md)
    print(md)


if __name__ == "__main__":
    cli.run(main)
