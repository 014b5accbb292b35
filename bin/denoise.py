"""Denoising benchmark of learned priors (MAP; DAEs also by direct output) against TV and
peers (scikit-image TV / non-local means / wavelet BayesShrink, BM3D) on whole images.

  python bin/denoise.py --mode grey --images ../shared/data/denoising/set12 --sigmas 25 \
      --tune_images results/splits/train400_heldout.txt --tune_limit 2 \
      --priors checkpoints/dae_grey_blind_train400.keras,checkpoints/foe_5x5x1_96_train400.keras,tv,tv_chambolle,nl_means,wavelet,bm3d \
      --output results/denoising_set12.md

λ is tuned at convergence on --tune_images (never the test images); runs made in parallel
(e.g. one per σ with its own λ grid) are combined with --merge (README, "Denoising benchmark").
"""


from absl import flags, logging

from tfrestore import cli

flags.DEFINE_list("priors", ["tv", "tv_chambolle", "nl_means", "wavelet", "bm3d"],
                  "Methods: .keras priors (patch priors by MAP; DAEs by MAP and directly), "
                  "tv (MAP), tv_chambolle, nl_means, wavelet, bm3d.")
flags.DEFINE_list("images", None, "Test images: files, folders, .txt lists.")
flags.DEFINE_integer("limit", 0, "Use at most this many test images (0: all).")
flags.DEFINE_enum("mode", "grey", ["grey", "colour"], "grey: BT.601 luminance; colour: RGB.")
flags.DEFINE_integer("input_size", 0, "0: whole images at their own size; N: resize the "
                     "short side to N and centre-crop a square.")
flags.DEFINE_list("tune_images", None, "Separate images for tuning parameters per σ (never "
                  "the test images).")
flags.DEFINE_integer("tune_limit", 4, "Use at most this many tuning images (0: all).")
flags.DEFINE_integer("tune_input_size", 0, "As --input_size, for the tuning images.")
flags.DEFINE_alias("image_size", "input_size")
flags.DEFINE_alias("tune_image_size", "tune_input_size")
flags.DEFINE_float("tune_sigma", 0, "If set, tune the MAP weights λ once at this σ and reuse "
                   "them at every σ (σ is in the data term); 0: tune per σ.")
flags.DEFINE_list("sigmas", ["15", "25", "50"], "Noise standard deviations (0-255 scale).")
flags.DEFINE_list("prior_weights", ["0.03", "0.1", "0.3", "1"], "λ grid, patch priors.")
flags.DEFINE_list("dae_weights", ["0.25", "0.5", "1", "2"], "λ grid, DAE priors (MAP).")
flags.DEFINE_list("tv_weights", ["0.01", "0.02", "0.04", "0.08"], "λ grid, TV (MAP).")
flags.DEFINE_list("chambolle_weights", ["0.04", "0.08", "0.12", "0.2", "0.3"],
                  "scikit-image TV weight grid (images in [0, 1]).")
flags.DEFINE_list("nlm_h", ["0.6", "0.8", "1.0"], "Non-local means h/σ grid.")
flags.DEFINE_string("map_optimizer", "lbfgs", "MAP with energy priors: lbfgs (scipy "
                    "L-BFGS-B, converges in tens of iterations) or a keras optimizer name "
                    "(adam, ...) on the optimisation engine (tfrestore.engine).")
flags.DEFINE_integer("max_steps", 1000, "L-BFGS iteration limit (capped by "
                     "$TFRESTORE_MAX_STEPS).")
flags.DEFINE_float("tol", 1e-7, "L-BFGS stops when F's relative decrease is below this.")
flags.DEFINE_integer("dae_steps", 100, "DAE fixed-point iteration limit.")
flags.DEFINE_float("dae_tol", 0.01, "DAE fixed point stops when the RMS change (grey "
                   "levels) is below this.")
flags.DEFINE_list("dae_estimators", ["map", "direct"], "Rows for a DAE: map (its gradient "
                  "in MAP) and/or direct (r(y)).")
flags.DEFINE_integer("seed", 0, "Noise seed (image i at σ gets seed (seed, σ, i)).")
flags.DEFINE_list("merge", [], "Other FILE.json results on the same images, mode and seed "
                  "whose cells are copied into this report, replacing its earlier cells (runs "
                  "made in parallel; later files win).")
flags.DEFINE_string("output", "results/denoising.md", "Markdown report; FILE.json beside it.")
flags.mark_flag_as_required("images")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from tfrestore.cli import exit_on_user_error
    from tfrestore.priors.denoise_cli import run
    exit_on_user_error(lambda _: run(FLAGS, logging.info))(None)


if __name__ == "__main__":
    cli.run(main)
