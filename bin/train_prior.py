"""Train a learned patch prior (ICA / Fields of Experts) by score matching.

Image prior (the shipped 8x8x3 FoE):
  python bin/train_prior.py --images ../shared/data/imagenet_samples --output foe.keras
The same prior trained further as a field (score matching on whole-image crops):
  python bin/train_prior.py --objective field --init foe.keras --images ... --output f.keras
Feature-map prior on a classifier layer:
  python bin/train_prior.py --images chelsea,astronaut --classifier vgg16 --weights random \
      --layer conv1_1/lin --patch_size 3 --n_experts 64 --output conv1.keras
"""


from absl import flags, logging

from tfrestore import cli

cli.define_prior_training_flags(
    input_size=128, steps=25000, batch_size=250, lr=1.0, eval_every=500, checkpoint_every=1000,
    batch_help="Patches per step (the global batch, split over all replicas and workers).",
    lr_help="Learning rate; scales the whole schedule.",
    seed_help="Seed of image split, patch sampling, init and batch order.",
    output_help="Where to write the prior (.keras).")
flags.DEFINE_enum("objective", "patches", ["patches", "field"], "patches: score matching "
                  "of whitened patches (a new prior); field: score matching of the --init "
                  "prior as a field on whole-image crops (--crop), filter norms free.")
flags.DEFINE_integer("patch_size", 8, "Patch height and width.")
flags.DEFINE_integer("n_experts", 512, "Number of experts N.")
flags.DEFINE_enum("expert", "student_t", ["student_t", "logistic", "foe", "ica"],
                  "student_t/foe: Fields of Experts; logistic/ica: over-complete ICA.")
flags.DEFINE_enum("layout", "full", ["full", "separable", "channelwise"], "Filter layout.")
flags.DEFINE_enum("whiten", "pca", ["pca", "zca", "none"], "Whitening of patches.")
flags.DEFINE_integer("whiten_dims", 0, "Whitened dimensions d (0: the data's rank, 191 for "
                     "centred 8x8x3 patches).")
flags.DEFINE_bool("centre", True, "Subtract each patch's mean (drops the DC direction).")
flags.DEFINE_integer("n_train", 100000, "Training patches.")
flags.DEFINE_integer("n_val", 10000, "Validation patches (from held-out images only).")
flags.DEFINE_enum("schedule", "thesis", ["thesis", "cosine", "constant"], "thesis: 1.0 -> "
                  "3e-5 in 8 pieces at the thesis-code boundaries scaled to --steps; cosine: "
                  "to 2% of --lr.")
flags.DEFINE_float("init_alpha", 0.1, "Initial expert weight.")
flags.DEFINE_integer("patience", 0, "Early stopping after this many evaluations without "
                     "improvement (0: off).")
cli.define_strategy_flags()
flags.DEFINE_string("figure", None, "Filter figure PNG (default: next to --output).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    strategy = cli.strategy_from_flags()   # before TensorFlow sets up its devices
    from tfrestore.priors.recipe import train_field_prior, train_patch_prior
    f = FLAGS
    if f.objective == "field":
        if strategy is not None and strategy.num_replicas_in_sync > 1:
            raise ValueError("--objective=field runs on one device: drop --strategy.")
        train_field_prior(
            f.images, f.output, f.init, image_size=f.input_size, max_images=f.limit,
            classifier=f.classifier, weights=f.weights, weights_seed=f.weights_seed,
            layer=f.layer, grey=f.grey, crop=f.crop, val_fraction=f.val_fraction,
            val_images=f.val_images, steps=f.steps, batch_size=f.batch_size, lr=f.lr,
            schedule=f.schedule, seed=f.seed, eval_every=f.eval_every, patience=f.patience,
            checkpoint_dir=f.checkpoint_dir, checkpoint_every=f.checkpoint_every,
            log_dir=f.tensorboard_dir, figure=f.figure, log=logging.info, fresh=f.fresh)
        return
    if f.init:
        raise ValueError("--init is for --objective=field (a patch prior is trained from "
                         "random filters).")
    train_patch_prior(
        f.images, f.output, image_size=f.input_size, max_images=f.limit,
        classifier=f.classifier, weights=f.weights, weights_seed=f.weights_seed,
        layer=f.layer, patch_size=f.patch_size, n_experts=f.n_experts, expert=f.expert,
        layout=f.layout, whiten=f.whiten, whiten_dims=f.whiten_dims, centre=f.centre,
        n_train=f.n_train, n_val=f.n_val, val_fraction=f.val_fraction,
        val_images=f.val_images, steps=f.steps, batch_size=f.batch_size, lr=f.lr,
        schedule=f.schedule, init_alpha=f.init_alpha, seed=f.seed,
        eval_every=f.eval_every, patience=f.patience, checkpoint_dir=f.checkpoint_dir,
        checkpoint_every=f.checkpoint_every, log_dir=f.tensorboard_dir, strategy=strategy,
        figure=f.figure, grey=f.grey, log=logging.info, fresh=f.fresh)


if __name__ == "__main__":
    cli.run(main)
