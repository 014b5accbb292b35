"""Feature-map DAEs against the linear denoisers of the same maps: shrinkage per channel,
x̂ = y·v/(v + σ²) with v the channel's variance (in the DAE's normalised units), and the
best pointwise linear denoiser across channels, x̂ = μ + S(S + σ²I)⁻¹(y − μ) with μ, S the
mean and covariance of the channels on these very maps (an oracle fit: the best a Gaussian
model of the channels can do here).

A DAE prior whose denoising is worse than these linear maps models the maps less well than a
Gaussian; its gradient −(r(x) − x)/σ² is then a weak prior. Development images only (never
the test images); noise seeded.

  python bench/fmap_dae_vs_wiener.py --output=results/fmap_dae_vs_wiener.md
"""
from absl import flags

from tfrestore import cli

flags.DEFINE_list("daes", [
    "alexnet:random:conv1/lin:checkpoints/fmap/dae_alexnet_conv1_lin.keras",
    "alexnet:random:conv2/lin:checkpoints/fmap/dae_alexnet_conv2_lin.keras",
    "alexnet:random:conv3/lin:checkpoints/fmap/dae_alexnet_conv3_lin.keras",
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
    from tfrestore.priors.dae import optimal_gaussian_denoiser
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
        flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
        gauss = optimal_gaussian_denoiser(flat.mean(0), np.cov(flat, rowvar=False),
                                          FLAGS.sigma)
        mse = {"noisy": np.mean((y - x) ** 2),
               "wiener": np.mean((y * v / (v + FLAGS.sigma ** 2) - x) ** 2),
               "gauss": np.mean((gauss(y.reshape(flat.shape)).reshape(x.shape) - x) ** 2),
               "dae": np.mean((np.asarray(dae.normalise(dae(mean + std * y))) - x) ** 2)}
        gain = {k: 10 * np.log10(mse["noisy"] / mse[k]) for k in ("wiener", "gauss", "dae")}
        skip = "yes" if getattr(dae, "linear_skip", False) else "no"
        rows.append(f"| {net} ({weights}) | {layer} | `{path}` | {skip} | {mse['noisy']:.4f} | "
                    + " | ".join(f"{mse[k]:.4f} ({gain[k]:+.2f} dB)"
                                 for k in ("wiener", "gauss", "dae")) + " |")
        print(rows[-1], flush=True)
    md = "\n".join([
        "# Feature-map DAEs against per-channel linear shrinkage", "",
        f"`{cli.command_line()}`", "",
        f"{FLAGS.limit} development images, noise σ = {FLAGS.sigma:g} (units of each channel's "
        f"std), seed {FLAGS.seed}. MSE in normalised units (gain over the noisy maps). "
        "Shrinkage: x̂ = y·v/(v + σ²) per channel, v the channel's mean square on these maps. "
        "Gaussian: the best pointwise linear denoiser across channels, μ + S(S + σ²I)⁻¹(y − μ), "
        "fit on these maps (an oracle). Linear skip: the DAE has the linear path across "
        "channels (`bin/train_dae.py --linear_skip`).",
        "", "| network | layer | DAE | linear skip | noisy MSE | shrinkage per channel | "
        "Gaussian across channels | DAE |", "|---|---|---|---|---|---|---|---|"] + rows) + "\n"
    if FLAGS.output:
        atomic_write(FLAGS.output, md)
    print(md)


if __name__ == "__main__":
    cli.run(main)
