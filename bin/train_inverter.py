"""Train an inverting network (Dosovitskiy & Brox) for a classifier, from a layer to the image.

  # Offline quick start: random-weight MobileNetV2 at 64 px, bundled photographs (~1 min).
  python bin/train_inverter.py --classifier=mobilenet_v2 --weights=random --input_size=64 \
      --images=astronaut,chelsea,coffee,rocket,cat,camera --num_val=2 --mode=joint \
      --steps=50 --batch_size=4 --output_dir=/tmp/inverter_demo
  # The shared MobileNetV2, 700 ImageNet images for training and 100 held out:
  nice -n 10 python bin/train_inverter.py \
      --classifier=../shared/data/models/tf2_mobilenet_v2_1.0_224_ptq.tflite \
      --images=../shared/data/imagenet_samples --num_val=100 \
      --blocks=expanded_conv_3_add,expanded_conv_5_add,expanded_conv_12_add \
      --mode=joint --steps=200 --output_dir=/tmp/inverter_mnv2

  # To convergence: held-out loss every 50 steps; 4 flat evaluations (< 0.5% better than
  # the best) drop the learning rate (/3, /10, /30), a plateau at the last rate stops;
  # --steps is the cap; the best weights are saved; features cached once.
  nice -n 15 python bin/train_inverter.py --classifier=alexnet --weights=random \
      --weights_seed=0 --images=../shared/data/imagenet_samples --num_val=100 \
      --blocks=conv1/lin,conv2/lin,conv3/lin,conv4/lin,conv5/lin --mode=solo \
      --module=conv1/lin --schedule=plateau --patience=4 --rtol=0.005 --val_every=50 \
      --steps=15000 --batch_size=32 --feature_cache=/tmp/alexnet_feats.npz \
      --output_dir=/tmp/alexnet_conv1
  # Joint or end-to-end fine-tuning that starts from converged stacked modules (same
  # --blocks, --kind, --hidden) rather than from random weights:
  #   ... --mode=joint --init=checkpoints/inverters/mobilenet_v2_expanded_conv_12_add_stacked.keras

Writes OUTPUT_DIR/inverter.keras (load with `keras.models.load_model` after
`import tfrestore`, or use with `bin/invert.py --method=network --inverter=...`),
train_info.json (settings, seeds, image split, history, converged, best step, seconds),
eval.json (held-out quality from every depth; with --module: that module's NMSE alone),
curve.json and curve.png (the held-out loss against step), tensorboard/ and ckpt/
(rerunning the same command resumes; a rerun with other settings stops and names them,
--fresh starts afresh).
"""
import dataclasses
import os

import numpy as np
from absl import flags

from tfrestore import cli

cli.define_classifier_flags()
flags.DEFINE_integer("input_size", None, "Square input size for keras.applications nets.")
flags.DEFINE_string("images", None, "Training images: files, folders, scikit-image photo "
                    "names or tfds:NAME:SPLIT:COUNT (comma-separated).")
flags.DEFINE_integer("limit", None, "Use at most this many images from --images.")
flags.DEFINE_integer("num_val", 0, "Images of --images held out for validation (seeded).")
flags.DEFINE_string("val_images", None, "Separate validation images (instead of --num_val).")
flags.DEFINE_string("layer", None, "Deepest layer to invert from (default: last block).")
flags.DEFINE_list("blocks", None, "Cut points shallow to deep, e.g. conv1_2,pool1,conv2_2 "
                  "(default: where the spatial resolution changes).")
flags.DEFINE_enum("mode", "joint", ["solo", "stacked", "joint", "end_to_end"],
                  "Training mode.")
flags.DEFINE_enum("kind", "deconv", ["deconv", "upsample"], "Inverse module design.")
flags.DEFINE_integer("hidden", None, "Hidden channels per module (default per module).")
flags.DEFINE_integer("steps", 1000, "Training steps ($TFRESTORE_MAX_STEPS caps it).")
flags.DEFINE_integer("batch_size", 16, "Global batch size (split over all replicas and workers).")
flags.DEFINE_float("lr", 3e-4, "Initial Adam learning rate.")
flags.DEFINE_enum("schedule", "thesis", ["thesis", "constant", "plateau"],
                  "thesis: lr, /3 at 4/15, /10 at 8/15, /30 at 12/15 of the steps; plateau: "
                  "the same rates, each dropped to when the held-out loss is flat (needs "
                  "--patience).")
flags.DEFINE_integer("patience", 0, "Train to convergence: this many held-out evaluations "
                     "in a row without a relative improvement of --rtol end the run (or drop "
                     "the rate with --schedule=plateau); --steps is then a cap. 0: run --steps.")
flags.DEFINE_float("rtol", 0.005, "Relative improvement of the held-out loss that counts "
                   "(with --patience).")
flags.DEFINE_string("module", None, "Solo/stacked: train only the module that inverts this "
                    "level (one of --blocks) to the level below; modules are independent in "
                    "solo training, so one run per module converges each on its own.")
flags.DEFINE_string("feature_cache", None, ".npz of the precomputed features (written on the "
                    "first run, reused when made with the same classifier, images and split).")
flags.DEFINE_integer("seed", 0, "Seed of the split, the initialisation and the batch order.")
flags.DEFINE_integer("log_every", 10, "Logging interval (steps).")
flags.DEFINE_integer("val_every", 100, "Validation interval (steps); 0 = only at the end.")
flags.DEFINE_integer("checkpoint_every", 100, "Checkpoint interval (steps).")
cli.define_strategy_flags()
cli.define_init_flag()
flags.DEFINE_string("output_dir", None, "Folder for inverter.keras, train_info.json, "
                    "eval.json, tensorboard/ and ckpt/.")
flags.DEFINE_bool("fresh", False, "Delete the earlier run in --output_dir (ckpt/, "
                  "tensorboard/) and start afresh.")
flags.mark_flags_as_required(["images", "output_dir"])
FLAGS = flags.FLAGS


# Flags that decide the trained inverter: a resumed run must share them.
RESULT_FLAGS = ("classifier", "weights", "weights_seed", "preprocessing", "input_size",
                "images", "limit", "num_val", "val_images", "layer", "blocks", "mode", "kind",
                "hidden", "steps", "batch_size", "lr", "schedule", "seed", "module")
# ... and when training to convergence, where and how the held-out loss is judged.
CRITERION_FLAGS = ("patience", "rtol", "val_every")


def _check_resume(out, chief=True):
    """Resume from OUTPUT_DIR/ckpt only with the same RESULT_FLAGS (tfrestore.runstate)."""
    import shutil
    from tfrestore.io import make_folder
    from tfrestore.runstate import check_settings
    # --steps as given: $TFRESTORE_MAX_STEPS is a smoke-test cap (an interruption), not a setting.
    names = RESULT_FLAGS + (CRITERION_FLAGS if FLAGS.patience else ())
    settings = {k: FLAGS[k].value for k in names}
    if FLAGS.init:   # (only then: runs started before --init existed still resume)
        from tfrestore.io import file_sha256
        if not os.path.isfile(FLAGS.init):
            raise FileNotFoundError(f"--init={FLAGS.init}: no such file; pass a trained "
                                    f"inverter (.keras) of the same blocks, kind and widths.")
        settings.update(init=FLAGS.init, init_sha256=file_sha256(FLAGS.init))
    make_folder(out, "--output_dir")
    # Multi-worker: only the chief deletes (--fresh) and records; the others check.
    if check_settings(os.path.join(out, "ckpt"), settings, fresh=FLAGS.fresh,
                      write=chief) == "fresh" and chief:
        shutil.rmtree(os.path.join(out, "tensorboard"), ignore_errors=True)
        print(f"--fresh: deleted the earlier run in {out}", flush=True)


@cli.exit_on_user_error
def main(argv):
    del argv
    from tfrestore.inverters import (TrainConfig, Trainer, build_stack, evaluate_stack,
                                     load_inverter, resolve_blocks, save_stack, train_info,
                                     warm_start)
    from tfrestore.inverters.training import module_nmse
    from tfrestore.io import write_json
    cfg = TrainConfig(mode=FLAGS.mode, steps=FLAGS.steps, batch_size=FLAGS.batch_size,
                      lr=FLAGS.lr, schedule=FLAGS.schedule, seed=FLAGS.seed,
                      log_every=FLAGS.log_every, val_every=FLAGS.val_every,
                      checkpoint_every=FLAGS.checkpoint_every, patience=FLAGS.patience,
                      rtol=FLAGS.rtol)
    for name in ("num_val", "cpu_replicas"):
        if FLAGS[name].value < 0:
            raise ValueError(f"--{name}={FLAGS[name].value}: must be >= 0.")
    strategy = cli.strategy_from_flags()  # before anything initialises TensorFlow's devices
    from tfrestore.distribute import barrier, is_chief
    chief = is_chief(strategy)
    _check_resume(FLAGS.output_dir, chief)
    clf = cli.classifier_from_flags(input_size=FLAGS.input_size)
    blocks = resolve_blocks(clf, FLAGS.blocks, up_to=FLAGS.layer)
    levels = ["input"] + blocks
    if FLAGS.module:
        if FLAGS.module not in blocks:
            raise ValueError(f"--module={FLAGS.module} is not one of the blocks {blocks}.")
        cfg = dataclasses.replace(cfg, module=levels.index(FLAGS.module))
    data = _features(clf, levels)
    print(f"{clf.name}: inverting {' -> '.join(reversed(data.levels))}"
          + (f" (module from {FLAGS.module} only)" if FLAGS.module else "") +
          f"; {data.n_train} training, {len(data.val_names)} validation images; "
          f"mode {cfg.mode}", flush=True)
    out = FLAGS.output_dir
    init = load_inverter(FLAGS.init) if FLAGS.init else None

    def new_stack():
        stack = build_stack(clf, blocks=blocks, kind=FLAGS.kind, hidden=FLAGS.hidden,
                            seed=FLAGS.seed)
        return warm_start(stack, init, f"--init={FLAGS.init}") if init else stack
    trainer = Trainer(new_stack, data, cfg, strategy=strategy,
                      logdir=os.path.join(out, "tensorboard"), ckpt_dir=os.path.join(out, "ckpt"))
    if int(trainer.step.numpy()):
        print(f"Resuming from step {int(trainer.step.numpy())}"
              + (" (already converged)" if trainer.converged else ""), flush=True)
    trainer.train(verbose=True)
    if not chief:   # multi-worker: the chief writes the results
        barrier(strategy)   # ... and this worker stays in the job until it did
        print("Trained (non-chief worker: the chief wrote the inverter)", flush=True)
        return
    if cfg.patience:
        trainer.use_best_weights()
        print(f"{'Converged' if trainer.converged else 'NOT converged (step cap)'} at step "
              f"{int(trainer.step.numpy())}; best held-out loss {trainer.best_value:.5g} at "
              f"step {trainer.best_step} (the weights saved)", flush=True)
    path = save_stack(trainer.stack, os.path.join(out, "inverter.keras"))
    if not data.val_names:
        evaluation = {}
    elif cfg.module:
        evaluation = {FLAGS.module: {"solo_module_nmse": float(np.mean(
            module_nmse(trainer.stack, data.val, cfg.module)))}}
    else:
        evaluation = evaluate_stack(trainer.stack, clf, data.val)
    write_json(os.path.join(out, "eval.json"), evaluation)
    info = train_info(trainer, clf, {"command": cli.command_line(), "init": FLAGS.init})
    write_json(os.path.join(out, "train_info.json"), info)
    write_json(os.path.join(out, "curve.json"), {
        k: info[k] for k in ("steps_done", "seconds", "converged", "best_step",
                             "best_val_total", "history")})
    if any("val_total" in r for r in trainer.history):
        from tfrestore.plotting import save_validation_curves
        save_validation_curves(os.path.join(out, "curve.png"),
                               {os.path.basename(os.path.abspath(out)): trainer.history})
    for layer, r in evaluation.items():
        print(f"held-out from {layer}: " + " ".join(f"{k}={v:.4g}" for k, v in r.items()))
    print(f"Wrote {path}")
    barrier(strategy)   # multi-worker: the other workers leave the job together with the chief


def _features(clf, levels):
    """Features of --images (split) and --val_images, from --feature_cache when it holds
    the same ones, else computed once (and cached)."""
    from tfrestore.data import load_images
    from tfrestore.inverters import prepare_data
    from tfrestore.inverters.training import load_features, save_features
    key = {"classifier": clf.describe(), "levels": levels,
           **{k: FLAGS[k].value for k in ("images", "limit", "num_val", "val_images",
                                          "seed", "weights_seed", "input_size")}}
    data = load_features(FLAGS.feature_cache, key)
    if data is not None:
        print(f"Features from {FLAGS.feature_cache}", flush=True)
        return data
    loaded = load_images(FLAGS.images, clf.input_size, limit=FLAGS.limit)
    val = load_images(FLAGS.val_images, clf.input_size) if FLAGS.val_images else None
    data = prepare_data(clf, levels, loaded.images, loaded.paths,
                        num_val=0 if val else FLAGS.num_val,
                        val_images=val.images if val else None,
                        val_names=val.paths if val else None, seed=FLAGS.seed)
    if FLAGS.feature_cache:
        save_features(FLAGS.feature_cache, data, key)
        print(f"Features cached in {FLAGS.feature_cache}", flush=True)
    return data


if __name__ == "__main__":
    cli.run(main)
