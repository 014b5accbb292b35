"""Training a `PatchPrior` by score matching: GradientTape loop, Adam with a piecewise
schedule, TensorBoard, checkpoints with exact resume, early stopping, tf.distribute.

Determinism: the sample order is a function of (seed, step) only — epoch e uses the
permutation `default_rng([seed, e])` of the training set, and a run resumed at step t reads
from position t·B of that order — so an interrupted and resumed run sees exactly the batches
of an uninterrupted one. The checkpoint holds the prior, the optimizer (moments, iteration),
the step and the early-stopping state (best validation loss, its weights, patience count).
"""
import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tfrestore import distribute as D
from tfrestore import engine as E
from tfrestore import summaries
from tfrestore.plotting.mosaic import filter_mosaic
from tfrestore.priors.score_matching import score_matching_loss, value_and_gradients

__all__ = ["TrainConfig", "thesis_schedule", "train_prior", "train_field", "filter_mosaic",
           "THESIS_STEPS", "THESIS_BOUNDARIES", "THESIS_LRS"]

# Thesis-code schedule for "full512" (REFERENCE §3): 25k Adam steps.
THESIS_STEPS = 25000
THESIS_BOUNDARIES = (10000, 13000, 15000, 17000, 19000, 21000, 23000)
THESIS_LRS = (1.0, 0.1, 3e-2, 1e-2, 3e-3, 1e-3, 1e-4, 3e-5)


@dataclasses.dataclass
class TrainConfig:
    steps: int = THESIS_STEPS
    batch_size: int = 250
    lr: float = 1.0              # scales the whole schedule (THESIS_LRS[0] = 1.0)
    schedule: str = "thesis"     # "thesis" (boundaries scaled by steps/25000), "cosine" (to
                                 # 2% of lr) or "constant"
    seed: int = 0
    eval_every: int = 500        # validation loss (and early stopping) every this many steps
    patience: int = 0            # evaluations without improvement before stopping (0: never)
    min_delta: float = 0.0
    log_every: int = 100
    checkpoint_dir: str = None
    checkpoint_every: int = 1000
    log_dir: str = None          # TensorBoard
    progress: bool = True        # progress bar with time left
    max_val: int = 20000         # validation patches evaluated


def thesis_schedule(steps, lr=1.0):
    """The thesis piecewise-constant schedule, boundaries scaled from 25k to `steps`."""
    scale = steps / THESIS_STEPS
    bounds = [max(1, int(round(b * scale))) for b in THESIS_BOUNDARIES]
    # Keep boundaries strictly increasing for very short runs.
    for i in range(1, len(bounds)):
        bounds[i] = max(bounds[i], bounds[i - 1] + 1)
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        bounds, [lr * v for v in THESIS_LRS])


def _order(n, batch_size, seed, start_step, steps):
    """Sample indices for steps [start_step, steps): epoch-wise seeded permutations."""
    per_epoch = n // batch_size
    if per_epoch == 0:
        raise ValueError(f"Batch size {batch_size} exceeds the {n} training patches.")
    first, last = start_step // per_epoch, (steps - 1) // per_epoch
    chunks = [np.random.default_rng([seed, e]).permutation(n)[:per_epoch * batch_size]
              for e in range(first, last + 1)]
    order = np.concatenate(chunks) if chunks else np.zeros(0, np.int64)
    off = (start_step - first * per_epoch) * batch_size
    return order[off:off + (steps - start_step) * batch_size].astype(np.int64)


def train_prior(prior, train_z, val_z=None, config=None, strategy=None, log=print):
    """Fit `prior`'s filters and weights to whitened training coordinates by score matching.

    Args:
      prior: a `PatchPrior` (statistics already installed), created under `strategy.scope()`
        when a strategy is given.
      train_z, val_z: [n, d] whitened coordinates (`prior.patch_coords(patches)`).
      config: `TrainConfig`.
      strategy: a `tf.distribute.Strategy` (default: the current/default one).
      log: callable for progress lines.
    Returns:
      history dict: steps run, last/best losses, whether it stopped early, timings.
    """
    cfg = config or TrainConfig()
    strategy = strategy or tf.distribute.get_strategy()
    train_z = np.asarray(train_z, np.float32)
    n, d = train_z.shape
    if d != prior.dim:
        raise ValueError(f"Training data has {d} dimensions, the prior {prior.dim}.")
    if not prior.unit_norm:
        raise ValueError("Patch score matching fits unit-norm filters; this prior has free "
                         "norms (trained as a field): continue it with train_field.")
    expert = prior.expert
    data = tf.constant(train_z)
    val = None
    if val_z is not None and len(val_z):
        val = tf.constant(np.asarray(val_z, np.float32)[:cfg.max_val])

    # Objective and gradients compiled together (XLA): see score_matching.value_and_gradients.
    grad_fn = value_and_gradients(prior.raw_filters, prior.alpha, expert,
                                  prior.trainable_parameters())

    @tf.function
    def val_loss():
        return tf.stack(score_matching_loss(val, prior.model_filters(), prior.alpha(), expert))

    def batches(start):
        order = _order(n, cfg.batch_size, cfg.seed, start, cfg.steps)
        return (tf.data.Dataset.from_tensor_slices(order)
                .batch(cfg.batch_size, drop_remainder=True)
                .map(lambda idx: tf.gather(data, idx)).prefetch(2))

    return _fit(prior, cfg, strategy, log, grad_fn, batches,
                None if val is None else lambda: val_loss().numpy())


def _crops(images, batch_size, crop, seed, start, steps):
    """Random crops [batch, crop, crop, C] for steps [start, steps): step t draws from the
    generator seeded (seed, t), so a resumed run sees the batches of an uninterrupted one."""
    n, h, w = images.shape[:3]
    for t in range(start, steps):
        rng = np.random.default_rng([seed, t])
        idx = rng.integers(0, n, batch_size)
        ys, xs = rng.integers(0, h - crop + 1, batch_size), rng.integers(0, w - crop + 1,
                                                                           batch_size)
        yield np.stack([images[i, y:y + crop, x:x + crop] for i, y, x in zip(idx, ys, xs)])


def train_field(prior, train_images, val_images=None, config=None, crop=40, strategy=None,
                log=print):
    """Fit `prior` as a field on whole images: score matching of its energy on random crops
    (`score_matching.field_score_matching_loss`), in natural-scale pixel coordinates.

    The prior keeps its statistics and whitening (start from a patch-trained prior); its
    filters and weights are trained, with free filter norms (`unit_norm=False`).

    Args:
      prior: a `PatchPrior` with `unit_norm=False` ("full" or "separable" layout).
      train_images, val_images: [n, H, W, C] natural-scale images; validation uses the
        whole held-out images.
      config: `TrainConfig` (batch_size: crops per step).
      crop: crop size; at least 2·(patch − 1) + 1 so that some pixel counts.
    Returns:
      history dict as `train_prior`'s.
    """
    from tfrestore.priors.score_matching import field_score_matching_loss
    cfg = config or TrainConfig()
    strategy = strategy or tf.distribute.get_strategy()
    if prior.unit_norm:
        raise ValueError("Train a field with free filter norms: a PatchPrior with "
                         "unit_norm=False (tfrestore.priors.recipe.train_field_prior).")
    train_images = np.asarray(train_images, np.float32)
    if train_images.ndim != 4 or train_images.shape[-1] != prior.channels:
        raise ValueError(f"Field training needs [n, H, W, {prior.channels}] images, got shape "
                         f"{train_images.shape}.")
    least = 2 * (max(prior.patch_size) - 1) + 1
    if not least <= crop <= min(train_images.shape[1:3]):
        raise ValueError(f"--crop={crop}: must be between {least} (a pixel whose cliques all "
                         f"lie inside) and the image size {min(train_images.shape[1:3])}.")
    params = prior.trainable_parameters()

    @tf.function
    def grad_fn(xb):
        with tf.GradientTape() as tape:
            j, t1, t2 = field_score_matching_loss(prior, xb)
        return (j, t1, t2), tape.gradient(j, params)

    def batches(start):
        shape = (cfg.batch_size, crop, crop, prior.channels)
        return tf.data.Dataset.from_generator(
            lambda: _crops(train_images, cfg.batch_size, crop, cfg.seed, start, cfg.steps),
            output_signature=tf.TensorSpec(shape, tf.float32)).prefetch(2)

    val_fn = None
    if val_images is not None and len(val_images):
        val = np.asarray(val_images, np.float32)
        val_step = tf.function(lambda v: tf.stack(field_score_matching_loss(prior, v)))

        def val_fn(chunk=8):   # images are equal-sized: the mean of chunk means is the mean
            parts = [val_step(tf.constant(val[i:i + chunk])).numpy() * len(val[i:i + chunk])
                     for i in range(0, len(val), chunk)]
            return np.sum(parts, axis=0) / len(val)
    return _fit(prior, cfg, strategy, log, grad_fn, batches, val_fn)


def _fit(prior, cfg, strategy, log, grad_fn, batches, val_fn):
    """The training loop both objectives share: Adam on `grad_fn(batch) -> ((J, trace,
    norm), grads)` over `batches(start_step)` (a tf.data.Dataset), validation `val_fn() ->
    [J, trace, norm]` with best weights and early stopping, checkpoints, TensorBoard."""
    if cfg.batch_size % strategy.num_replicas_in_sync:
        raise ValueError(f"Batch size {cfg.batch_size} is not divisible by the "
                         f"{strategy.num_replicas_in_sync} replicas.")
    params = prior.trainable_parameters()
    with strategy.scope():
        lr = (thesis_schedule(cfg.steps, cfg.lr) if cfg.schedule == "thesis" else
              keras.optimizers.schedules.CosineDecay(cfg.lr, cfg.steps, alpha=0.02)
              if cfg.schedule == "cosine" else cfg.lr)
        opt = keras.optimizers.Adam(learning_rate=lr)
        opt.build(params)
        step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        best_val = tf.Variable(np.inf, dtype=tf.float32, trainable=False, name="best_val")
        bad_evals = tf.Variable(0, dtype=tf.int64, trainable=False, name="bad_evals")
        best_params = [tf.Variable(p, trainable=False, name="best_" + p.name.split("/")[-1]
                                   .split(":")[0]) for p in params]
    ckpt = tf.train.Checkpoint(prior=prior, optimizer=opt, step=step_var, best_val=best_val,
                               bad_evals=bad_evals, best_params=best_params)
    manager = None
    if cfg.checkpoint_dir:
        # Multi-worker: all restore the shared latest checkpoint, only the chief writes there.
        manager = D.SharedCheckpoints(ckpt, cfg.checkpoint_dir, strategy, max_to_keep=2)
        restored = manager.restore()
        if restored:
            log(f"resumed from {restored} at step {int(step_var.numpy())}")
    start = int(step_var.numpy())
    log_dir = D.log_dir(cfg.log_dir, strategy)
    writer = tf.summary.create_file_writer(log_dir) if log_dir else None

    replicas = strategy.num_replicas_in_sync

    def replica_step(xb):
        (j, t1, t2), grads = grad_fn(xb)
        # Per-replica mean, summed over replicas by the optimizer = global mean.
        opt.apply_gradients(zip([g / replicas for g in grads], params))
        return tf.stack([j, t1, t2])

    @tf.function
    def train_step(xb):
        out = strategy.run(replica_step, args=(xb,))
        return strategy.reduce(tf.distribute.ReduceOp.MEAN, out, axis=None)

    dist_ds = D.distribute_dataset(strategy, batches(start))

    hist = {"start_step": start, "stopped_early": False, "train": [], "val": []}
    batch_iter = iter(dist_ds)

    def step_fn(i):
        last = train_step(next(batch_iter))
        step_var.assign(i + 1)
        return last[0], {"trace_term": last[1], "norm_term": last[2]}, opt.learning_rate

    class Validation(E.Callback):
        """Validation loss, best weights and early stopping every `eval_every` steps."""

        def on_step_end(self, loop, logs):
            step = logs.step
            if step % cfg.log_every == 0:
                m = logs.means()
                hist["train"].append((step, logs.loss, m["trace_term"], m["norm_term"]))
            if val_fn is None or not (step % cfg.eval_every == 0 or step == cfg.steps):
                return
            v = val_fn()
            hist["val"].append((step, float(v[0])))
            if v[0] < best_val.numpy() - cfg.min_delta:
                best_val.assign(v[0])
                bad_evals.assign(0)
                for b, p in zip(best_params, params):
                    b.assign(p)
            else:
                bad_evals.assign_add(1)
            log(f"step {step}: loss {logs.loss:.4f} val {v[0]:.4f} best {best_val.numpy():.4f}")
            if writer:
                with writer.as_default():
                    summaries.scalar("val/total", v[0], step)
                    summaries.scalar("val/trace_term", v[1], step)
                    summaries.scalar("val/norm_term", v[2], step)
                    summaries.image("filters", filter_mosaic(prior.image_space_filters(),
                                                             np.asarray(prior.alpha())), step)
            if cfg.patience and bad_evals.numpy() >= cfg.patience:
                log(f"early stopping at step {step}: no validation improvement in "
                    f"{cfg.patience} evaluations")
                hist["stopped_early"] = True
                loop.stop("early stopping")

    class Save(E.Callback):
        def on_step_end(self, loop, logs):
            if manager and (logs.step % cfg.checkpoint_every == 0 or
                            logs.step == cfg.steps or loop.stop_reason):
                manager.save(checkpoint_number=logs.step)

    callbacks = [E.NanGuard(), Validation(), Save()]
    if cfg.log_dir:
        callbacks.append(E.TensorBoard(log_dir, cfg.log_every))
    if cfg.progress:
        callbacks.append(E.ProgressBar(cfg.log_every))
    result = E.Loop(opt).run(cfg.steps, callbacks, step_fn, start_step=start)
    if writer:
        writer.flush()
    # The prior returned is the best on validation (if validated), else the last.
    if val_fn is not None and np.isfinite(best_val.numpy()):
        for b, p in zip(best_params, params):
            p.assign(b)
    last = result.last
    hist.update(steps=result.steps, seconds=result.seconds,
                last_train=None if last is None else
                [last.loss, last.means()["trace_term"], last.means()["norm_term"]],
                best_val=float(best_val.numpy()) if val_fn is not None else None)
    return hist
