"""Langevin sampling (ULA, or MALA with --mala) on the engine, of
  --mode=prior:    a learned prior alone, p(x) ~ exp(-sum_k w_k E_k(x) / T) (--prior at image;
                   --tv_weight adds M&V's TV), on --size x --size images;
  --mode=preimage: pre-images, exp(-E/T) with E = C * feature loss at --layer + the preset's
                   priors + --prior terms (any layer): images the network cannot tell
                   apart from --images at that layer.

  python bin/sample.py --mode=prior --prior=checkpoints/foe_8x8x3_512.keras@image:1 \
      --size=32 --n_samples=4 --steps=500 --step_size=0.5 --mala --output_dir=/tmp/s
  python bin/sample.py --mode=preimage --images=astronaut --layer=expanded_conv_6_add \
      --n_samples=4 --steps=300 --step_size=1 --temperature=0.01 --output_dir=/tmp/s2

Chains start from noise (--init=noise) or the image (--init=image). Outputs: samples.npz
(states every --every steps after --burn_in, energies [steps, chains], acceptance),
final/<k>.png, figure.png (chains' final states and energy traces), chain.json (mean
energy, acceptance rate, settings), tensorboard/.
"""
import os

from absl import flags

from tfrestore import cli
from tfrestore.inversion.presets import PRESETS

cli.define_classifier_flags()
flags.DEFINE_enum("mode", "prior", ["prior", "preimage"], "Energy: a prior alone, or a "
                  "pre-image energy.")
flags.DEFINE_string("images", "astronaut", "preimage: the image(s) whose code is matched "
                    "(one chain per --n_samples each).")
flags.DEFINE_string("layer", None, "preimage: the layer of the feature loss.")
flags.DEFINE_enum("preset", "mv2016", list(PRESETS), "preimage: C and handcrafted priors.")
flags.DEFINE_float("feature_weight", None, "preimage: C (default the preset's).")
flags.DEFINE_float("tv_weight", None, "Weight of M&V's TV (preimage default: the "
                   "preset's; prior mode default 0).")
flags.DEFINE_float("range_weight", None, "Weight of the range prior (preimage default: the "
                   "preset's; prior mode 0).")
flags.DEFINE_multi_string("prior", [], "Learned prior PATH[@LAYER][:WEIGHT], repeatable "
                          "(several layers with weights: seed section 5.2).")
flags.DEFINE_integer("input_size", 32, "prior mode: image size of the chains.")
flags.DEFINE_alias("size", "input_size")   # the flag's earlier name
flags.DEFINE_integer("n_samples", 4, "Chains (per image in preimage mode).")
flags.DEFINE_integer("steps", 500, "Langevin steps.")
flags.DEFINE_float("step_size", 0.5, "h: x <- x - h grad E + sqrt(2 h T) xi.")
flags.DEFINE_float("temperature", 1.0, "T of exp(-E/T).")
flags.DEFINE_bool("mala", False, "Metropolis-adjust every step (MALA).")
flags.DEFINE_enum("init", "noise", ["noise", "image"], "Chains start from noise (std "
                  "--init_std around the dataset mean) or the image.")
flags.DEFINE_float("init_std", 80 / 6.5, "Std of the noise start (0-255 units).")
flags.DEFINE_integer("burn_in", 0, "Steps before samples are kept.")
flags.DEFINE_integer("every", 50, "Keep a sample every this many steps.")
flags.DEFINE_integer("seed", 0, "Seed of the start, the Langevin noise and MALA's tests.")
flags.DEFINE_string("output_dir", None, "Output folder.")
flags.mark_flags_as_required(["output_dir"])
FLAGS = flags.FLAGS


def _objective(clf):
    """(objective, settings, init images or None, shape) of the chosen mode."""
    import numpy as np

    from tfrestore.data import load_images
    from tfrestore.inversion import get_settings
    from tfrestore.inversion.learned import prior_terms
    from tfrestore.inversion.optimize import build_objective
    from tfrestore.uses.actmax import logits_layer
    from tfrestore.uses.sampling import sampling_settings
    terms = prior_terms(clf, FLAGS.prior)
    n = FLAGS.n_samples
    if FLAGS.mode == "prior":
        bad = [t.name for t in terms if t.at != "image"]
        if bad:
            raise ValueError(f"--mode=prior samples images: attach priors at image ({bad}).")
        if not terms and not FLAGS.tv_weight:
            raise ValueError("--mode=prior needs --prior=PATH@image:W (or --tv_weight).")
        settings = get_settings("fast", clf, logits_layer(clf), seed=FLAGS.seed,
                                tv_weight=FLAGS.tv_weight or 0.0,
                                range_weight=FLAGS.range_weight or 0.0, feature_weight=0.0,
                                init_std=FLAGS.init_std)
        objective = build_objective(clf, settings, terms, feature_loss=False)
        shape = (n, FLAGS.input_size, FLAGS.input_size, 3)
        init = None
        if FLAGS.init == "image":
            img = load_images(FLAGS.images, FLAGS.input_size, limit=1).images
            init = np.repeat(img, n, 0)
        return objective, sampling_settings(settings, FLAGS.step_size, FLAGS.steps), init, \
            shape, None
    if not FLAGS.layer:
        raise ValueError("--mode=preimage needs --layer=LAYER.")
    settings = get_settings(FLAGS.preset, clf, FLAGS.layer, seed=FLAGS.seed,
                            feature_weight=FLAGS.feature_weight, tv_weight=FLAGS.tv_weight,
                            range_weight=FLAGS.range_weight, init_std=FLAGS.init_std)
    loaded = load_images(FLAGS.images, clf.input_size)
    targets = np.repeat(loaded.images, n, 0)
    objective = build_objective(clf, settings, terms)
    objective.set_targets(targets)
    init = targets if FLAGS.init == "image" else None
    return objective, sampling_settings(settings, FLAGS.step_size, FLAGS.steps), init, \
        targets.shape, loaded.images


@cli.exit_on_user_error
def main(argv):
    del argv
    import numpy as np

    from tfrestore.io import environment_info, save_npz, save_png, write_json
    from tfrestore.uses.grid import save_image_grid
    from tfrestore.uses.sampling import sample_images
    clf = cli.classifier_from_flags()
    objective, settings, init, shape, originals = _objective(clf)
    out = cli.prepare_output_dir(FLAGS.output_dir, ("final", "figure.png", "tensorboard",
                                                    "samples.npz", "chain.json"))
    print(f"{'MALA' if FLAGS.mala else 'ULA'}: {shape[0]} chains x {settings.steps} steps, "
          f"h={FLAGS.step_size:g}, T={FLAGS.temperature:g}, energy "
          f"{[t.name for t in objective.terms]}", flush=True)
    chain, final = sample_images(clf, objective, settings, shape=shape, init=init,
                                 temperature=FLAGS.temperature, mala=FLAGS.mala,
                                 every=FLAGS.every, burn_in=FLAGS.burn_in,
                                 summary_dir=os.path.join(out, "tensorboard"))
    for k, img in enumerate(final):
        save_png(os.path.join(out, "final", f"{k:03d}.png"), img)
    save_npz(os.path.join(out, "samples.npz"), samples=chain.samples,
             sample_steps=np.asarray(chain.sample_steps), energies=chain.energies,
             acceptance=np.asarray([] if chain.acceptance is None else chain.acceptance),
             final=final)
    e = chain.energies
    half = e[len(e) // 2:]
    stats = {"mean_energy_second_half": float(half.mean()),
             "energy_first_step": e[0].tolist(), "energy_last_step": e[-1].tolist(),
             "acceptance_rate": None if chain.acceptance is None else
             float(chain.acceptance.mean()),
             "acceptance_per_chain": None if chain.acceptance is None else
             chain.acceptance.tolist(),
             "pixel_std_across_chains_final": float(np.std(final, axis=0).mean()),
             "seconds": chain.seconds, "steps": chain.steps}
    titles = [f"chain {k}: E={e[-1][k]:.3g}" for k in range(len(final))]
    imgs = final if originals is None else np.concatenate([originals, final])
    if originals is not None:
        titles = ["target"] * len(originals) + titles
    save_image_grid(os.path.join(out, "figure.png"), imgs, titles, ncols=min(6, len(imgs)),
                    title=f"{'MALA' if FLAGS.mala else 'ULA'} {FLAGS.mode}: h="
                          f"{FLAGS.step_size:g}, T={FLAGS.temperature:g}, {chain.steps} steps"
                          + (f", acceptance {stats['acceptance_rate']:.2f}"
                             if FLAGS.mala else ""))
    write_json(os.path.join(out, "chain.json"), {
        "stats": stats, "settings": dict(
            {k: getattr(FLAGS, k) for k in ("mode", "images", "layer", "preset", "prior",
                                            "size", "n_samples", "steps", "step_size",
                                            "temperature", "mala", "init", "init_std",
                                            "burn_in", "every", "seed")},
            objective=objective.describe(), command=cli.command_line(), **clf.describe(),
            environment=environment_info())})
    print(f"mean energy (second half) {stats['mean_energy_second_half']:.4g}; acceptance "
          f"{stats['acceptance_rate']}; wrote {out}")


if __name__ == "__main__":
    cli.run(main)
