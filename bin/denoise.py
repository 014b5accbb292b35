"""MAP denoising benchmark of learned patch priors against total variation (PSNR table).

  python bin/denoise.py --priors checkpoints/foe_8x8x3_512.keras,checkpoints/ica_8x8x3_512.keras,tv \
      --images astronaut,chelsea,coffee,rocket,../shared/data/images --output results/denoising.md
"""


from absl import app, flags, logging

flags.DEFINE_list("priors", ["tv"], "Methods: .keras prior files and/or 'tv'.")
flags.DEFINE_list("images", None, "Test images (files, folders, scikit-image photo names).")
flags.DEFINE_list("tune_images", None, "Separate images for choosing λ (default: λ = 1).")
flags.DEFINE_list("prior_weights", ["0.003", "0.01", "0.03"],
                  "λ grid for the learned priors (with --tune_images).")
flags.DEFINE_list("tv_weights", ["0.02", "0.04", "0.08"],
                  "λ grid for TV (with --tune_images).")
flags.DEFINE_integer("image_size", 128, "Resize (short side) and centre-crop to this size...")
flags.DEFINE_integer("crop", 64, "... then centre-crop to this size (cost grows with area).")
flags.DEFINE_list("sigmas", ["15", "25"], "Noise standard deviations (0-255 scale).")
flags.DEFINE_list("modes", ["grey", "colour"], "grey: luminance (replicated to 3 channels "
                  "for colour priors); colour: RGB.")
flags.DEFINE_integer("steps", 100, "Adam steps per MAP estimate (capped by "
                     "$TFRESTORE_MAX_STEPS).")
flags.DEFINE_float("lr", 2.0, "Initial Adam step in pixel units (cosine-decayed).")
flags.DEFINE_integer("seed", 0, "Noise seed.")
flags.DEFINE_bool("tune_once", False, "Choose λ once per method (first mode, largest σ) and "
                  "reuse it for every mode and σ (cheaper; σ is in the data term).")
flags.DEFINE_string("output", "results/denoising.md", "Markdown table (a .json is written "
                    "beside it).")
flags.mark_flag_as_required("images")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from tfrestore.cli import exit_on_user_error
    from tfrestore.priors.denoise_cli import run
    exit_on_user_error(lambda _: run(FLAGS, logging.info))(None)


if __name__ == "__main__":
    app.run(main)
