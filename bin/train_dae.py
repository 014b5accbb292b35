"""Train a denoising-autoencoder (DAE) prior on images or on a classifier's feature maps.

Grey image DAE on the standard denoising training set (σ = 25 on 0-255):
  python bin/train_dae.py --images ../shared/data/denoising/train400 --grey --input_size 180 \
      --sigma 25 --output checkpoints/dae_grey_train400.keras
Feature-map DAE (σ in units of each channel's std):
  python bin/train_dae.py --images ../shared/data/imagenet_samples \
      --classifier ../shared/data/models/tf2_mobilenet_v2_1.0_224_ptq.tflite \
      --layer expanded_conv_3_add --sigma 0.5 --crop 20 --output checkpoints/fmap/dae_....keras
Rerunning the same command with --checkpoint_dir resumes.
"""


from absl import flags, logging

from tfrestore import cli

cli.define_prior_training_flags(
    input_size=180, steps=4000, batch_size=16, lr=1e-3, eval_every=250, checkpoint_every=250,
    batch_help="Crops per step.", lr_help="Initial learning rate (cosine decay to 2%).",
    seed_help="Seed of the image split, initialisation, crops and noise.",
    output_help="Where to write the DAE (.keras; a .json goes beside it).")
flags.DEFINE_float("sigma", 25.0, "σ_DAE: images in 0-255 units; feature maps in units of "
                   "each channel's std.")
flags.DEFINE_float("blind_max", 0.0, "If > 0, train blind on σ uniform in [0, blind_max] "
                   "(same units as --sigma; --sigma is then the nominal σ of the prior).")
flags.DEFINE_integer("features", 32, "Hidden width.")
flags.DEFINE_list("dilations", ["1", "2", "3", "4", "3", "2"], "Dilation of each hidden 3x3 "
                  "conv (their number is the depth minus 2).")
flags.DEFINE_bool("linear_skip", False, "Add a linear 1x1 path across channels to the "
                  "denoiser, started at the data's best pointwise linear denoiser (for "
                  "feature maps: the DAE then starts as good as a Gaussian model).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from tfrestore.cli import exit_on_user_error
    from tfrestore.priors.dae_recipe import train_dae_prior

    def run(_):
        f = FLAGS
        train_dae_prior(
            f.images, f.output, image_size=f.input_size, max_images=f.limit, grey=f.grey,
            classifier=f.classifier, weights=f.weights, weights_seed=f.weights_seed,
            layer=f.layer, sigma=f.sigma, features=f.features,
            dilations=[int(d) for d in f.dilations], val_fraction=f.val_fraction,
            val_images=f.val_images, steps=f.steps, batch_size=f.batch_size, crop=f.crop,
            lr=f.lr, seed=f.seed, eval_every=f.eval_every, checkpoint_dir=f.checkpoint_dir,
            checkpoint_every=f.checkpoint_every, tensorboard_dir=f.tensorboard_dir,
            blind_max=f.blind_max, init=f.init, log=logging.info, fresh=f.fresh,
            linear_skip=f.linear_skip)
    return exit_on_user_error(run)(None)


if __name__ == "__main__":
    cli.run(main)
