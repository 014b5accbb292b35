"""Training inverting networks: solo / stacked / joint / end-to-end (Dosovitskiy & Brox).

Modes (REFERENCE.md §4), for a stack with levels 0 (network input) .. k (deepest cut):

* ``solo``: module i is trained alone on *true* feature pairs (level i -> level i-1);
  the per-module losses are summed, and as the modules share no weights this is exactly
  k independent trainings.
* ``stacked``: the same training as solo; the solo modules are then *chained* (that is
  how a stacked inverter is evaluated and used).
* ``joint``: the chain from level k is run and a loss is put at every level it passes.
* ``end_to_end``: the chain from level k with the image-level loss only.

Loss at level l: mean squared error divided by a per-layer constant, the mean square of
that layer's training features (so every level counts about equally, independent of the
feature scale). Features are computed once per image (the classifier is frozen), the
training loop is a custom `tf.GradientTape` step in `tf.function`, run through a
`tf.distribute.Strategy` (default: the default strategy), over a `tf.data` pipeline whose
batch order is a pure function of (seed, step) so that a run resumed from a
`tf.train.CheckpointManager` checkpoint is identical to an uninterrupted one.

Training to convergence (`TrainConfig.patience` > 0): the held-out loss of the mode is
evaluated every `val_every` steps; an evaluation that does not improve on the best so far
by the relative tolerance `rtol` counts as flat, and `patience` flat evaluations in a row
end the run as converged (schedule "plateau": they first divide the learning rate by the
thesis's factors 3, 10, 30 in turn, and only a plateau at the last rate ends the run).
`config.steps` is then a cap. The best weights (by held-out loss) are kept, checkpointed
with the criterion's state, and are the ones saved. The curve (every evaluation) is
written to `history.json` beside the checkpoints and resumes with them.
"""
import dataclasses
import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from tfrestore import distribute as D
from tfrestore import engine as E
from tfrestore.runstate import records_up_to
from tfrestore import summaries
from tfrestore.io import cap_steps, environment_info, write_json

__all__ = ["MODES", "TrainConfig", "FeatureData", "compute_features", "split_indices",
           "prepare_data", "level_losses", "batch_indices", "lr_schedule", "Trainer",
           "evaluate_stack", "module_nmse", "save_stack", "Plateau", "save_features",
           "load_features", "load_best_weights"]

MODES = ("solo", "stacked", "joint", "end_to_end")
# Thesis schedule shape: lr, lr/3 @ 4/15, lr/10 @ 8/15, lr/30 @ 12/15 of the steps
# (3e-4 -> 1e-4 @4k -> 3e-5 @8k -> 1e-5 @12k of 15k).
_LR_FRACTIONS = (4 / 15, 8 / 15, 12 / 15)
_LR_FACTORS = (1.0, 1 / 3, 1 / 10, 1 / 30)


@dataclasses.dataclass
class TrainConfig:
    """Training settings (all recorded with the trained inverter)."""
    mode: str = "joint"
    steps: int = 1000
    batch_size: int = 16
    lr: float = 3e-4
    schedule: str = "thesis"        # "thesis" (piecewise, see above), "constant", "plateau"
    seed: int = 0
    log_every: int = 10
    val_every: int = 100
    checkpoint_every: int = 100
    patience: int = 0               # flat held-out evaluations that end the run (0: never)
    rtol: float = 0.005             # relative improvement of the held-out loss that counts
    module: int = 0                 # solo/stacked: train only the module from this level

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"Unknown training mode '{self.mode}'; use one of {MODES}.")
        if self.schedule not in ("thesis", "constant", "plateau"):
            raise ValueError(f"Unknown schedule '{self.schedule}'; use thesis, constant or "
                             f"plateau.")
        if self.patience < 0 or not (math.isfinite(self.rtol) and self.rtol >= 0):
            raise ValueError(f"--patience={self.patience}, --rtol={self.rtol}: need "
                             f"patience >= 0 and a finite rtol >= 0.")
        if self.patience and not self.val_every:
            raise ValueError("--patience needs held-out evaluations: set --val_every > 0.")
        if self.schedule == "plateau" and not self.patience:
            raise ValueError("--schedule=plateau drops the learning rate at plateaus of the "
                             "held-out loss: set --patience > 0.")
        if self.module and self.mode not in ("solo", "stacked"):
            raise ValueError(f"--module trains one module alone, which is solo training; "
                             f"got mode '{self.mode}'.")
        if self.module < 0:
            raise ValueError(f"--module={self.module}: must be >= 0.")
        for name in ("steps", "batch_size", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name}={getattr(self, name)}: must be >= 1.")
        if self.val_every < 0:
            raise ValueError(f"--val_every={self.val_every}: must be >= 0 (0: at the end).")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"--lr={self.lr}: must be a finite number > 0.")


@dataclasses.dataclass
class FeatureData:
    """Precomputed features, level 0 (network input) to k, for training and validation."""
    levels: list
    train: list          # per level [N_train, H, W, C] float32
    val: list            # per level [N_val, H, W, C] float32
    train_names: list
    val_names: list
    scales: list         # per level mean square of the training features

    @property
    def n_train(self):
        return len(self.train[0])


def compute_features(classifier, levels, images, batch_size=16):
    """[preprocessed images, features at levels[1]...] for RGB 0-255 `images`."""
    names = [l for l in levels if l != "input"]
    images = np.asarray(images, np.float32)
    pre = np.concatenate([np.asarray(classifier.preprocess(images[i:i + batch_size]))
                          for i in range(0, len(images), batch_size)], 0)
    feats = classifier.features(images, names, batch_size) if names else {}
    return [pre.astype(np.float32)] + [feats[n] for n in names]


def split_indices(n, num_val, seed=0):
    """(train, val) index arrays: a seeded random `num_val` images held out
    (`tfrestore.data.patches.split_by_image`, the one train/validation split)."""
    from tfrestore.data.patches import split_by_image
    if not 0 <= num_val < n:
        raise ValueError(f"Cannot hold out {num_val} of {n} images for validation; "
                         f"need at least one training image.")
    return split_by_image(list(range(n)), seed=seed, num_val=num_val)


def prepare_data(classifier, levels, images, names, num_val=0, val_images=None,
                 val_names=None, seed=0, batch_size=16):
    """Compute features once and split them into training and (never trained on) validation.

    Validation images come either from `val_images` or from `num_val` images held out of
    `images` (seeded). Images whose names appear in both sets are an error.
    """
    images = np.asarray(images, np.float32)
    if val_images is not None:
        tr, va = np.arange(len(images)), None
    else:
        tr, va = split_indices(len(images), num_val, seed)
    feats = compute_features(classifier, levels, images, batch_size)
    train = [f[tr] for f in feats]
    train_names = [names[i] for i in tr]
    if val_images is not None:
        val = compute_features(classifier, levels, np.asarray(val_images, np.float32),
                               batch_size)
        val_names = list(val_names or [f"val_{i}" for i in range(len(val_images))])
    else:
        val = [f[va] for f in feats]
        val_names = [names[i] for i in va]
    overlap = set(train_names) & set(val_names)
    if overlap:
        raise ValueError(f"{len(overlap)} validation images are also training images, "
                         f"e.g. {sorted(overlap)[:3]}; validation must be held out.")
    scales = [float(np.mean(np.square(t, dtype=np.float64))) or 1.0 for t in train]
    return FeatureData(list(levels), train, val, train_names, val_names, scales)


def level_losses(stack, batch, mode, scales, module=0):
    """Per-example losses {level index: [B]} of one batch (list of tensors per level).

    `module` (solo/stacked only): just the loss of the module from that level (0: all)."""
    k = stack.depth

    def nmse(pred, target, level):
        err = tf.reduce_mean(tf.square(pred - target), axis=[1, 2, 3])
        return err / scales[level]

    losses = {}
    if mode in ("solo", "stacked"):
        for i in (range(1, k + 1) if not module else [module]):
            losses[i - 1] = nmse(stack.inverse_modules[i - 1](batch[i]), batch[i - 1], i - 1)
    else:
        outs = stack.invert_levels(batch[k])          # levels k-1, ..., 0
        if mode == "joint":
            for j, out in enumerate(outs):
                losses[k - 1 - j] = nmse(out, batch[k - 1 - j], k - 1 - j)
        else:
            losses[0] = nmse(outs[-1], batch[0], 0)
    return losses


def batch_indices(n, batch_size, steps, seed):
    """[steps, batch] training indices: seeded epoch permutations, a function of step only."""
    per_epoch = max(1, n // batch_size)
    rows, epoch = [], 0
    while len(rows) < steps:
        perm = np.random.default_rng([seed, epoch]).permutation(n)
        if n < batch_size:
            perm = np.resize(perm, batch_size)
        rows += [perm[j * batch_size:(j + 1) * batch_size] for j in range(per_epoch)]
        epoch += 1
    return np.stack(rows[:steps]).astype(np.int64)


def lr_schedule(cfg):
    if cfg.schedule in ("constant", "plateau"):   # plateau: Trainer drops it at plateaus
        return cfg.lr
    bounds = sorted({max(1, int(f * cfg.steps)) for f in _LR_FRACTIONS})
    values = [cfg.lr * f for f in _LR_FACTORS[:len(bounds) + 1]]
    return keras.optimizers.schedules.PiecewiseConstantDecay(bounds, values)


class Plateau(tf.Module):
    """The convergence criterion on the held-out loss, its state checkpointable.

    `update(step, value)` after each evaluation returns "improved" (value below
    best - rtol * |best|: the best weights are copied), "wait" (flat, fewer than `patience`
    in a row), "drop" (`patience` flat evaluations and learning-rate drops left: the
    caller lowers the rate, the count restarts) or "converged" (`patience` flat
    evaluations at the last rate).
    """

    def __init__(self, variables, rtol, patience, drops=0):
        super().__init__(name="plateau")
        self.rtol, self.patience, self.drops = float(rtol), int(patience), int(drops)
        self.best = tf.Variable(np.inf, dtype=tf.float64, trainable=False, name="best")
        self.best_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="best_step")
        self.flat = tf.Variable(0, dtype=tf.int64, trainable=False, name="flat")
        self.level = tf.Variable(0, dtype=tf.int64, trainable=False, name="level")
        self.done = tf.Variable(False, trainable=False, name="done")
        self.variables_ = list(variables)
        self.best_weights = [tf.Variable(v, trainable=False, name=f"best_{i}")
                             for i, v in enumerate(self.variables_)]

    def update(self, step, value):
        best = float(self.best.numpy())
        if not math.isfinite(best) or value < best - self.rtol * abs(best):
            self.best.assign(value)
            self.best_step.assign(step)
            self.flat.assign(0)
            for b, v in zip(self.best_weights, self.variables_):
                b.assign(v)
            return "improved"
        self.flat.assign_add(1)
        if int(self.flat.numpy()) < self.patience:
            return "wait"
        self.flat.assign(0)
        if int(self.level.numpy()) < self.drops:
            self.level.assign_add(1)
            return "drop"
        self.done.assign(True)
        return "converged"

    def restore_best(self):
        """Set the variables to the best evaluated weights (no-op before any evaluation)."""
        if int(self.best_step.numpy()):
            for b, v in zip(self.best_weights, self.variables_):
                v.assign(b)


def _settings_key(key):
    return json.dumps(key, sort_keys=True, default=str)


def save_features(path, data, key):
    """Cache `FeatureData` in an uncompressed .npz (written to a temporary file, then
    renamed) under `key`, a JSON-able dict of everything the features depend on."""
    arrays = {f"train{i}": a for i, a in enumerate(data.train)}
    arrays.update({f"val{i}": a for i, a in enumerate(data.val)})
    from tfrestore.io import atomic_open
    with atomic_open(path) as f:   # streamed: the cache can be GBs
        np.savez(f, key=np.asarray(_settings_key(key)), levels=np.asarray(data.levels),
                 train_names=np.asarray(data.train_names),
                 val_names=np.asarray(data.val_names), scales=np.asarray(data.scales),
                 **arrays)
    return path


def load_features(path, key):
    """`FeatureData` from a `save_features` cache, or None when absent or made with
    another `key` (the caller recomputes and overwrites it)."""
    if not path or not os.path.exists(path):
        return None
    with np.load(path, allow_pickle=False) as z:
        if str(z["key"]) != _settings_key(key):
            return None
        levels = [str(l) for l in z["levels"]]
        k = len(levels)
        return FeatureData(levels, [z[f"train{i}"] for i in range(k)],
                           [z[f"val{i}"] for i in range(k)],
                           [str(n) for n in z["train_names"]],
                           [str(n) for n in z["val_names"]],
                           [float(x) for x in z["scales"]])


def _dataset(arrays, indices):
    """tf.data over precomputed arrays, one batch per row of `indices`."""
    shapes = [a.shape[1:] for a in arrays]

    def gather(idx):
        return tuple(a[idx] for a in arrays)

    def load(idx):
        out = tf.numpy_function(gather, [idx], [tf.float32] * len(arrays))
        return tuple(tf.ensure_shape(o, (None,) + tuple(s)) for o, s in zip(out, shapes))

    # Flat indices re-batched: a `batch` op with a static size lets tf.distribute split each
    # global batch over replicas and workers (auto-sharding by DATA).
    batch = indices.shape[1] if len(indices) else 1
    ds = tf.data.Dataset.from_tensor_slices(np.asarray(indices).reshape(-1))
    ds = ds.batch(batch, drop_remainder=True)
    return ds.map(load, num_parallel_calls=1, deterministic=True).prefetch(2)


class Trainer:
    """Trains an `InverterStack` on `FeatureData` in one of the four modes.

    Args:
      stack_factory: () -> InverterStack; called inside the strategy's scope.
      data: `FeatureData` whose levels equal the stack's.
      config: `TrainConfig` (its `steps` is capped by $TFRESTORE_MAX_STEPS).
      strategy: a `tf.distribute.Strategy` (default: the default strategy).
      logdir: TensorBoard folder (None: no summaries).
      ckpt_dir: CheckpointManager folder; an existing checkpoint there is resumed (with the
        history and, when training to convergence, the criterion's state and best weights).
    """

    def __init__(self, stack_factory, data, config, strategy=None, logdir=None,
                 ckpt_dir=None):
        self.cfg = dataclasses.replace(config, steps=cap_steps(config.steps))
        self.data = data
        self.strategy = strategy or tf.distribute.get_strategy()
        replicas = self.strategy.num_replicas_in_sync
        if self.cfg.batch_size % replicas:
            raise ValueError(f"batch_size {self.cfg.batch_size} must be divisible by the "
                             f"{replicas} replicas of the distribution strategy.")
        if self.cfg.patience and not len(data.val[0]):
            raise ValueError("Training to convergence (--patience) needs held-out images: "
                             "set --num_val or --val_images.")
        with self.strategy.scope():
            self.stack = stack_factory()
            self.stack.mode = self.cfg.mode  # saved: check_inverter knows where it may start
            if list(self.stack.levels) != list(data.levels):
                raise ValueError(f"Stack levels {self.stack.levels} differ from the data's "
                                 f"{data.levels}.")
            if self.cfg.module > self.stack.depth:
                raise ValueError(f"--module={self.cfg.module}: the stack has modules from "
                                 f"levels 1..{self.stack.depth} only.")
            self.variables = (self.stack.inverse_modules[self.cfg.module - 1].trainable_variables
                              if self.cfg.module else self.stack.trainable_variables)
            self.optimizer = keras.optimizers.Adam(lr_schedule(self.cfg))
            self.optimizer.build(self.variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.elapsed = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="elapsed")
            self.plateau = None
            if self.cfg.patience:
                drops = len(_LR_FACTORS) - 1 if self.cfg.schedule == "plateau" else 0
                self.plateau = Plateau(self.stack.weights, self.cfg.rtol, self.cfg.patience,
                                       drops)
        # Multi-worker: only the chief writes to logdir/ckpt_dir (tfrestore.distribute).
        self.writer = D.summary_writer(logdir, self.strategy)
        self.manager, self.ckpt_dir = None, ckpt_dir
        self.history = []
        if ckpt_dir:
            objects = dict(model=self.stack, optimizer=self.optimizer, step=self.step,
                           elapsed=self.elapsed)
            if self.plateau is not None:
                objects["plateau"] = self.plateau
            ckpt = tf.train.Checkpoint(**objects)
            self.manager = D.SharedCheckpoints(ckpt, ckpt_dir, self.strategy, max_to_keep=2)
            if self.manager.restore():
                self.history = records_up_to(self._history_path(), int(self.step.numpy()))
        self._set_plateau_lr()
        self._train_step = self._make_train_step()

    # ------------------------------------------------------------------ state
    @property
    def converged(self):
        """True once the criterion ended the run (None without a criterion)."""
        return None if self.plateau is None else bool(self.plateau.done.numpy())

    @property
    def best_step(self):
        return None if self.plateau is None else int(self.plateau.best_step.numpy())

    @property
    def best_value(self):
        return None if self.plateau is None else float(self.plateau.best.numpy())

    def use_best_weights(self):
        """Put the best evaluated weights into the stack (training to convergence)."""
        if self.plateau is not None:
            self.plateau.restore_best()

    def _set_plateau_lr(self):
        if self.cfg.schedule == "plateau":
            level = int(self.plateau.level.numpy())
            self.optimizer.learning_rate.assign(self.cfg.lr * _LR_FACTORS[level])

    def _history_path(self):
        return os.path.join(self.ckpt_dir, "history.json")


    def _save(self, step):
        self.manager.save(checkpoint_number=step)
        if self.manager.chief:
            write_json(self._history_path(), self.history)

    # ------------------------------------------------------------------ steps
    def _make_train_step(self):
        cfg, scales, stack, opt = self.cfg, self.data.scales, self.stack, self.optimizer
        global_batch, variables = cfg.batch_size, self.variables

        def replica_step(batch):
            with tf.GradientTape() as tape:
                losses = level_losses(stack, batch, cfg.mode, scales, cfg.module)
                total = tf.add_n(list(losses.values()))
                loss = tf.reduce_sum(total) / global_batch
            grads = tape.gradient(loss, variables)
            opt.apply_gradients(zip(grads, variables))
            return {f"level_{l}": tf.reduce_sum(v) / global_batch for l, v in losses.items()}

        @tf.function
        def step(batch):
            per_replica = self.strategy.run(replica_step, args=(batch,))
            return {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                    for k, v in per_replica.items()}
        return step

    def validation_losses(self, batch_size=16):
        """Mean per-level loss of the mode on the validation set, their sum `total` (what
        the convergence criterion watches), and (unless one module is trained alone) the
        image-level loss of the full chain from the deepest level (comparable across
        modes)."""
        if not len(self.data.val[0]):
            return {}
        sums = {}
        for i in range(0, len(self.data.val[0]), batch_size):
            batch = [tf.constant(v[i:i + batch_size]) for v in self.data.val]
            losses = level_losses(self.stack, batch, self.cfg.mode, self.data.scales,
                                  self.cfg.module)
            items = [(f"level_{k}", v) for k, v in losses.items()]
            items.append(("total", tf.add_n(list(losses.values()))))
            if not self.cfg.module:
                chain = level_losses(self.stack, batch, "end_to_end", self.data.scales)[0]
                items.append(("chain_image", chain))
            for k, v in items:
                sums[k] = sums.get(k, 0.0) + float(tf.reduce_sum(tf.cast(v, tf.float64)))
        n = len(self.data.val[0])
        return {k: v / n for k, v in sums.items()}

    def train(self, until=None, verbose=False):
        """Run (or resume) training to `config.steps` or convergence; returns the history.

        `until` stops early after that step (as an interruption would; the schedule and
        the data order still follow `config.steps`).
        """
        cfg = self.cfg
        start = int(self.step.numpy())
        stop = cfg.steps if until is None else min(int(until), cfg.steps)
        if self.converged or start >= stop:
            return self.history
        indices = batch_indices(self.data.n_train, cfg.batch_size, cfg.steps, cfg.seed)
        ds = _dataset(self.data.train, indices[start:stop])
        batches = iter(D.distribute_dataset(self.strategy, ds))
        t0, elapsed0 = time.time(), float(self.elapsed.numpy())
        trainer = self

        def step_fn(i):
            losses = trainer._train_step(next(batches))
            trainer.step.assign_add(1)
            total = tf.add_n(list(losses.values()))
            return total, losses, trainer.optimizer.learning_rate

        def seconds():
            return round(elapsed0 + time.time() - t0, 2)

        class Record(E.Callback):
            """History, TensorBoard, validation, the criterion and checkpoints."""

            def on_step_end(self, loop, logs):
                s, record = logs.step, None
                if s % cfg.log_every == 0 or s == cfg.steps:
                    m = logs.means()
                    record = {"step": s, "time_s": seconds(), "lr": m["lr"],
                              **{k: v for k, v in m.items() if k not in ("loss", "lr")},
                              "train_total": m["loss"]}
                if cfg.val_every and (s % cfg.val_every == 0 or s == cfg.steps):
                    record = record or {"step": s, "time_s": seconds(),
                                        "lr": float(trainer.optimizer.learning_rate.numpy())}
                    val = trainer.validation_losses()
                    record.update({f"val_{k}": v for k, v in val.items()})
                    if trainer.plateau is not None:
                        event = trainer.plateau.update(s, val["total"])
                        record["criterion"] = event
                        if event == "drop":
                            trainer._set_plateau_lr()
                        elif event == "converged":
                            loop.stop("converged")
                if record:
                    trainer.history.append(record)
                    trainer._summaries(record)
                if trainer.manager and (s % cfg.checkpoint_every == 0 or s == stop
                                        or loop.stop_reason):
                    trainer.elapsed.assign(seconds())
                    trainer._save(s)

        callbacks = [E.NanGuard(), Record()]
        if verbose:
            callbacks.append(E.ProgressBar(cfg.log_every))
        E.Loop(self.optimizer).run(stop, callbacks, step_fn, start_step=start)
        self.elapsed.assign(seconds())
        if self.writer:
            self.writer.flush()
        return self.history

    def _summaries(self, record):
        if not self.writer:
            return
        with self.writer.as_default(step=record["step"]):
            for k, v in record.items():
                if k not in ("step", "time_s", "criterion"):
                    summaries.scalar(k, v)


def load_best_weights(stack, ckpt_dir):
    """Put the best held-out weights of a (possibly still running) convergence training
    from its `ckpt_dir` into `stack` (built with the same settings).

    Returns {"step", "best_step", "best_val_total", "converged", "seconds"} of the latest
    checkpoint. Raises ValueError when the folder has no checkpoint.
    """
    path = tf.train.latest_checkpoint(ckpt_dir)
    if not path:
        raise ValueError(f"No checkpoint in '{ckpt_dir}'; has the training started?")
    plateau = Plateau(stack.weights, 0.0, 1)
    step = tf.Variable(0, dtype=tf.int64)
    elapsed = tf.Variable(0.0, dtype=tf.float64)
    tf.train.Checkpoint(model=stack, plateau=plateau, step=step,
                        elapsed=elapsed).restore(path).expect_partial()
    plateau.restore_best()
    return {"step": int(step.numpy()), "best_step": int(plateau.best_step.numpy()),
            "best_val_total": float(plateau.best.numpy()),
            "converged": bool(plateau.done.numpy()), "seconds": float(elapsed.numpy())}


def save_stack(stack, path):
    """Save an inverter as `.keras` atomically (`tfrestore.io.save_keras`)."""
    from tfrestore.io import save_keras
    return save_keras(stack, path, what="Inverters")


def _ssim_psnr(a, b):
    from tfrestore.metrics import image_metrics
    m = image_metrics(a, np.clip(b, 0, 255))
    return m["ssim"], m["psnr"]


def module_nmse(stack, features, s, batch_size=16):
    """[N] NMSE of the module from level s alone, on true input, vs the true level s-1."""
    out = []
    for i in range(0, len(features[0]), batch_size):
        pred = np.asarray(stack.inverse_modules[s - 1](tf.constant(features[s][i:i + batch_size])))
        tgt = features[s - 1][i:i + batch_size]
        out += list(np.sum((pred - tgt) ** 2, axis=(1, 2, 3))
                    / np.maximum(np.sum(tgt ** 2, axis=(1, 2, 3)), 1e-12))
    return np.asarray(out)


def evaluate_stack(stack, classifier, features, batch_size=16, sources=None):
    """Quality of a stack on precomputed `features` (list per level; level 0 = network input).

    For every source level s (or those in `sources`): the chain from the true features at
    s to the image, with image MSE (RGB 0-255), PSNR, SSIM, and the feature-space NMSE
    ||phi_s(x_rec) - phi_s(x)||^2 / ||phi_s(x)||^2 (mean over images) -- REFERENCE.md §5;
    and the solo error of module s alone (its output vs the true level s-1, NMSE).
    """
    rgb_true = np.clip(np.asarray(stack.to_rgb(tf.constant(features[0]))), 0, 255)
    result = {}
    for s in (sources or range(1, stack.depth + 1)):
        rec = []
        for i in range(0, len(features[0]), batch_size):
            f = tf.constant(features[s][i:i + batch_size])
            rec.append(np.asarray(stack(f, source=s)))
        rec = np.clip(np.concatenate(rec, 0), 0, 255)
        phi = compute_features(classifier, ["input", stack.levels[s]], rec, batch_size)[1]
        fnmse = np.sum((phi - features[s]) ** 2, axis=(1, 2, 3)) / np.maximum(
            np.sum(features[s] ** 2, axis=(1, 2, 3)), 1e-12)
        ssim, psnr = _ssim_psnr(rec, rgb_true)
        mse = np.mean((rec - rgb_true) ** 2, axis=(1, 2, 3))
        result[stack.levels[s]] = {"image_mse": float(np.mean(mse)),
                                   "psnr": float(np.mean(psnr)), "ssim": float(np.mean(ssim)),
                                   "feature_nmse": float(np.mean(fnmse)),
                                   "solo_module_nmse": float(np.mean(
                                       module_nmse(stack, features, s, batch_size)))}
    return result


def train_info(trainer, classifier, extra=None):
    """JSON-able record of a training run (settings, seeds, split, scales, history)."""
    return {"config": dataclasses.asdict(trainer.cfg), "classifier": classifier.describe(),
            "inverter": trainer.stack.describe(), "levels": trainer.data.levels,
            "scales": trainer.data.scales, "train_images": trainer.data.train_names,
            "val_images": trainer.data.val_names,
            "replicas": trainer.strategy.num_replicas_in_sync,
            "steps_done": int(trainer.step.numpy()), "seconds": float(trainer.elapsed.numpy()),
            "converged": trainer.converged, "best_step": trainer.best_step,
            "best_val_total": trainer.best_value,
            "history": trainer.history, "environment": environment_info(), **(extra or {})}


def write_train_info(path, info):
    write_json(path, info)
