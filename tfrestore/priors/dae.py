"""Denoising-autoencoder (DAE) priors: a residual conv denoiser r and the prior it implies.

A DAE r trained to remove Gaussian noise N(0, σ²I) from samples of p is, at the optimum,

    r(x) = x + σ² ∇ log p_σ(x),        p_σ = p * N(0, σ²I)       (Alain & Bengio 2014)

(exact for the smoothed density p_σ; → ∇ log p as σ → 0). So −(r(x) − x)/σ² is the gradient
of an energy E(x) ≈ −log p_σ(x) — the prior term of MAP denoising and inversion — even though
E itself has no closed form. `DAEPrior` returns ‖r(x) − x‖² per image as its (logged) value
and −(r(x) − x)/σ² as its gradient (`tf.custom_gradient`), so it plugs into every place a
patch prior does (`PriorTerm`, MAP denoising) and a step costs one forward pass of r.

The denoiser (`DenoisingAutoencoder`, saved as `.keras`): per-channel normalisation
x̂ = (x − m)/s (images: m = 0, s = 255; feature maps: the training maps' channel statistics),
then a small DnCNN/IRCNN-style residual network that predicts the noise (3×3 convolutions,
ReLU, no batch normalisation, optional dilations for a larger receptive field),
r(x) = x − s·net(x̂). With `linear_skip`, net(x̂) = cnn(x̂) + A x̂ + b (a 1×1 convolution
across channels), started at the best pointwise linear denoiser of the training data
(`fit_linear_skip`): the DAE begins where a Gaussian model of the channels ends, and the
CNN only has to learn what is not Gaussian. Feature-map DAEs without it were beaten by
per-channel shrinkage (results/fmap_dae_vs_wiener.md). σ_DAE is stored in normalised units
(`sigma`); in natural units it is σ·s per channel.
"""
import json

import keras
import numpy as np
import tensorflow as tf

from tfrestore import summaries

__all__ = ["DenoisingAutoencoder", "DAEPrior", "DAETrainConfig", "train_dae",
           "optimal_gaussian_denoiser", "fit_linear_skip", "is_dae"]


@keras.saving.register_keras_serializable(package="tfrestore")
class DenoisingAutoencoder(keras.Model):
    """Residual convolutional denoiser r: [B, H, W, C] natural scale -> same shape.

    Args:
      channels: C.
      sigma: σ_DAE in normalised units (noise std / s).
      features: width of the hidden layers.
      dilations: one entry per hidden 3×3 layer (the network has len(dilations) + 2 convs:
        input conv, hidden convs, output conv), e.g. (1, 2, 3, 4, 3, 2) (IRCNN-like).
      kernel_size: spatial size of every convolution (1 for non-spatial data, as in tests).
      metadata: dict of strings (what it was trained on: source, classifier, layer, ...).
      linear_skip: add a linear 1×1 path (across channels) to the noise predictor; set it
        to the data's best linear denoiser with `fit_linear_skip` before training.
    """

    def __init__(self, channels, sigma, features=32, dilations=(1, 2, 3, 4, 3, 2),
                 kernel_size=3, seed=0, metadata=None, linear_skip=False, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.sigma = float(sigma)
        self.features = int(features)
        self.dilations = tuple(int(d) for d in dilations)
        self.kernel_size = int(kernel_size)
        self.seed = int(seed)
        self.metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        self.linear_skip = bool(linear_skip)
        self.norm_mean = self.add_weight(shape=(self.channels,), initializer="zeros",
                                         trainable=False, name="norm_mean")
        self.norm_std = self.add_weight(shape=(self.channels,), initializer="ones",
                                        trainable=False, name="norm_std")
        init = lambda i: keras.initializers.HeNormal(seed=self.seed + i)  # noqa: E731
        k = self.kernel_size
        self.convs = [keras.layers.Conv2D(self.features, k, padding="same", activation="relu",
                                          kernel_initializer=init(0), name="conv_in")]
        for i, d in enumerate(self.dilations):
            self.convs.append(keras.layers.Conv2D(
                self.features, k, padding="same", dilation_rate=d, activation="relu",
                kernel_initializer=init(i + 1), name=f"conv_{i + 1}_d{d}"))
        # Small output init: r starts near the identity (with the linear path: exactly at
        # the linear denoiser it is set to; the zero layer still gets gradients).
        self.convs.append(keras.layers.Conv2D(
            self.channels, k, padding="same", name="conv_out",
            kernel_initializer="zeros" if linear_skip else
            keras.initializers.VarianceScaling(0.01, seed=self.seed + 99)))
        self.linear = (keras.layers.Conv2D(self.channels, 1, kernel_initializer="zeros",
                                           name="linear_skip") if self.linear_skip else None)
        self.build((None, None, None, self.channels))

    def build(self, input_shape):
        shape = (None, None, None, self.channels)
        for conv in self.convs:
            conv.build(shape)
            shape = (None, None, None, conv.filters)
        if self.linear is not None:
            self.linear.build((None, None, None, self.channels))
        self.built = True

    def set_statistics(self, mean, std):
        mean = np.asarray(mean, np.float32).reshape(-1)
        std = np.asarray(std, np.float32).reshape(-1)
        if mean.shape != (self.channels,) or std.shape != (self.channels,) or np.any(std <= 0):
            raise ValueError(f"Normalisation needs {self.channels} means and positive stds, "
                             f"got {mean.shape}, {std.shape}.")
        self.norm_mean.assign(mean)
        self.norm_std.assign(std)

    def normalise(self, x):
        return (x - self.norm_mean) / self.norm_std

    def predict_noise(self, xn):
        """net(x̂): the noise predicted in normalised units."""
        h = xn
        for conv in self.convs:
            h = conv(h)
        return h if self.linear is None else h + self.linear(xn)

    def call(self, x):
        x = tf.cast(tf.convert_to_tensor(x), tf.float32)
        self.check_input(x)
        return x - self.norm_std * self.predict_noise(self.normalise(x))

    def sigma_natural(self):
        """σ_DAE per channel in natural units (σ·s), [C]."""
        return self.sigma * tf.convert_to_tensor(self.norm_std)

    def check_input(self, x):
        from tfrestore.priors.layers import PriorMismatchError
        if x.shape.rank != 4:
            raise PriorMismatchError(f"A DAE takes [B, H, W, C] input, got shape {x.shape}.")
        if x.shape[-1] is not None and x.shape[-1] != self.channels:
            raise PriorMismatchError(
                f"This DAE models {self.channels}-channel inputs ({_origin(self.metadata)}) "
                f"but got {x.shape[-1]} channels: attach it to the layer it was trained on.")

    def receptive_field(self):
        k = self.kernel_size
        return 1 + 2 * (k // 2) * (2 + sum(self.dilations))

    def get_config(self):
        return {"channels": self.channels, "sigma": self.sigma, "features": self.features,
                "dilations": list(self.dilations), "kernel_size": self.kernel_size,
                "seed": self.seed, "metadata": dict(self.metadata),
                "linear_skip": self.linear_skip, "name": self.name}

    def compute_output_shape(self, input_shape):
        return input_shape


def _origin(metadata):
    return ", ".join(f"{k}={v}" for k, v in metadata.items()) or "no metadata"


def is_dae(model):
    return isinstance(model, DenoisingAutoencoder)


class DAEPrior(keras.layers.Layer):
    """The energy implied by a DAE: value ‖r(x) − x‖² per image, gradient −(r(x) − x)/σ².

    σ is σ_DAE in natural units (per channel). The value is only a readout (how far x is
    from what the denoiser considers clean); optimisation follows the custom gradient, the
    score of the noise-smoothed density. Interface shared with `PatchPrior`: `channels`,
    `metadata`, `patch_size` (the receptive field), `describe()`; [B, H, W, C] -> [B].
    """

    def __init__(self, dae, path=None, **kwargs):
        super().__init__(name=kwargs.pop("name", "dae_prior"), **kwargs)
        self.dae = dae
        self.source_path = path
        self.channels = dae.channels
        self.metadata = dict(dae.metadata)
        rf = dae.receptive_field()
        # PriorTerm's random crops must hold at least this much context.
        self.patch_size = (rf, rf)

    def residual(self, x):
        """r(x) − x (natural units)."""
        x = tf.cast(tf.convert_to_tensor(x), tf.float32)
        return self.dae(x) - x

    def call(self, x):
        x = tf.cast(tf.convert_to_tensor(x), tf.float32)
        inv_var = 1.0 / tf.square(self.dae.sigma_natural())
        # r is evaluated outside the custom-gradient function: no backpropagation through
        # the denoiser (a step costs one forward pass) and no captured variables.
        res = tf.stop_gradient(self.dae(x) - x)

        @tf.custom_gradient
        def energy(v, r):
            def grad(upstream):
                # dE/dx = −(r(x) − x)/σ², times the upstream cotangent of each image's energy.
                return -upstream[:, None, None, None] * r * inv_var, tf.zeros_like(r)
            return tf.reduce_sum(tf.square(r), axis=[1, 2, 3]), grad
        return energy(x, res)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],)

    def describe(self):
        d = dict(self.dae.get_config(), kind="dae", receptive_field=self.dae.receptive_field(),
                 sigma_natural=[float(s) for s in np.asarray(self.dae.sigma_natural())])
        if self.source_path:
            d["path"] = self.source_path
        return d

    def __repr__(self):
        return (f"DAEPrior({self.channels} channels, sigma={self.dae.sigma:g} normalised, "
                f"{json.dumps(self.metadata)})")


def optimal_gaussian_denoiser(mean, cov, sigma):
    """Exact MMSE denoiser for data N(mean, cov) and noise σ: x ↦ μ + S(S + σ²I)⁻¹(x − μ).

    Returns a NumPy function of x [..., d] (the reference the trained DAE must match).
    """
    mean = np.asarray(mean, np.float64)
    cov = np.asarray(cov, np.float64)
    a = cov @ np.linalg.inv(cov + sigma ** 2 * np.eye(len(mean)))
    return lambda x: mean + (np.asarray(x, np.float64) - mean) @ a.T


def fit_linear_skip(dae, data):
    """Set the DAE's linear path to the best pointwise linear noise predictor of `data`.

    For normalised clean data x [N, H, W, C] with channel mean μ and covariance S and noise
    σ (normalised units), the MMSE linear estimate of the noise from y = x + σn is
    σ²(S + σ²I)⁻¹(y − μ), i.e. y − (optimal Gaussian denoiser)(y). Returns that [C, C] map.
    """
    if dae.linear is None:
        raise ValueError("fit_linear_skip needs a DAE built with linear_skip=True.")
    x = np.asarray(data, np.float64).reshape(-1, dae.channels)
    mu = x.mean(0)
    cov = np.atleast_2d(np.cov(x, rowvar=False))
    s2 = dae.sigma ** 2
    a = s2 * np.linalg.inv(cov + s2 * np.eye(dae.channels))   # noise = a (y − μ)
    # Conv2D: out = y @ kernel + bias, so kernel = aᵀ and bias = −a μ.
    dae.linear.kernel.assign(a.T[None, None].astype(np.float32))
    dae.linear.bias.assign((-a @ mu).astype(np.float32))
    return a


# --------------------------------------------------------------------------- training
class DAETrainConfig:
    """Settings of `train_dae` (see bin/train_dae.py for their meaning)."""

    def __init__(self, steps=4000, batch_size=16, crop=40, lr=1e-3, seed=0, eval_every=250,
                 log_every=50, checkpoint_dir=None, checkpoint_every=250, log_dir=None,
                 export=None, n_val=64, blind_max=0.0, augment=True):
        self.steps, self.batch_size, self.crop, self.lr = int(steps), int(batch_size), int(
            crop), float(lr)
        self.seed, self.eval_every, self.log_every = int(seed), int(eval_every), int(log_every)
        self.checkpoint_dir, self.checkpoint_every = checkpoint_dir, int(checkpoint_every)
        self.log_dir, self.export, self.n_val = log_dir, export, int(n_val)
        self.blind_max, self.augment = float(blind_max), bool(augment)

    def to_dict(self):
        return dict(vars(self))


def _batches(data, cfg, sigma, start_step):
    """tf.data of (clean, noisy) normalised crops; batch t is a function of (seed, t) only,
    so a resumed run sees exactly the batches of an uninterrupted one."""
    n, h, w, c = data.shape
    crop = min(cfg.crop, h, w)
    images = tf.constant(data)

    def make(step):
        seeds = tf.random.experimental.stateless_split(
            tf.stack([tf.constant(cfg.seed, tf.int64), step]), 5)
        idx = tf.random.stateless_uniform([cfg.batch_size], seeds[0], 0, n, tf.int32)
        top = tf.random.stateless_uniform([cfg.batch_size], seeds[1], 0, h - crop + 1, tf.int32)
        left = tf.random.stateless_uniform([cfg.batch_size], seeds[2], 0, w - crop + 1,
                                           tf.int32)
        clean = tf.map_fn(lambda a: images[a[0], a[1]:a[1] + crop, a[2]:a[2] + crop],
                          tf.stack([idx, top, left], 1), fn_output_signature=tf.float32)
        if cfg.augment:   # the 8 flips/rotations of the square, one per crop
            k = tf.random.stateless_uniform([cfg.batch_size], seeds[3], 0, 8, tf.int32)
            clean = tf.map_fn(
                lambda a: tf.image.rot90(tf.where(a[1] >= 4, tf.reverse(a[0], [1]), a[0]),
                                         a[1] % 4),
                (clean, k), fn_output_signature=tf.float32)
        noise = tf.random.stateless_normal(tf.shape(clean), seeds[4])
        if cfg.blind_max > 0:  # blind training: σ per crop uniform in [0, blind_max]
            s = tf.random.stateless_uniform([cfg.batch_size, 1, 1, 1],
                                            seeds[4] + 1, 0.0, cfg.blind_max)
        else:
            s = tf.constant(sigma, tf.float32)
        return clean, clean + s * noise

    ds = tf.data.Dataset.range(start_step, cfg.steps).map(make, num_parallel_calls=1)
    return ds.prefetch(2)


def _validation(data, cfg, sigma):
    """Fixed (seeded) validation crops and noise from held-out images (normalised)."""
    n, h, w, c = data.shape
    crop = min(cfg.crop * 2, h, w)
    rng = np.random.default_rng([cfg.seed, 12345])
    idx = rng.integers(0, n, cfg.n_val)
    tops = rng.integers(0, h - crop + 1, cfg.n_val)
    lefts = rng.integers(0, w - crop + 1, cfg.n_val)
    clean = np.stack([data[i, t:t + crop, l:l + crop] for i, t, l in zip(idx, tops, lefts)])
    s = sigma if cfg.blind_max <= 0 else cfg.blind_max / 2
    noisy = clean + s * rng.standard_normal(clean.shape).astype(np.float32)
    return clean.astype(np.float32), noisy.astype(np.float32)


def train_dae(dae, train_data, val_data, cfg, log=print, on_export=None, stop_after=None):
    """Train `dae` on normalised arrays [N, H, W, C] (training and held-out images).

    Adam with cosine decay; loss = mean ‖net(x̂ + σn) − σn‖² (the noise, normalised units).
    Runs on the engine's `Loop` with its callbacks (NaN guard, progress, TensorBoard).
    Checkpoints (model, optimizer, step, best validation) resume exactly; TensorBoard gets
    loss, validation loss and PSNR gain, learning rate; at each evaluation the best model so
    far is exported (`cfg.export`, via `on_export(dae)`) so an interrupted run still ships.
    `stop_after` ends this invocation after that many steps (an interruption; rerunning
    resumes). Returns a history dict.
    """
    from tfrestore.io import cap_steps
    steps = cap_steps(cfg.steps)
    cfg.steps = steps
    sigma = dae.sigma
    sched = keras.optimizers.schedules.CosineDecay(cfg.lr, max(steps, 1), alpha=0.02)
    opt = keras.optimizers.Adam(sched)
    opt.build(dae.trainable_variables)
    step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    best_val = tf.Variable(np.inf, dtype=tf.float32, trainable=False, name="best_val")
    manager = None
    if cfg.checkpoint_dir:
        ckpt = tf.train.Checkpoint(model=dae, optimizer=opt, step=step_var, best_val=best_val)
        manager = tf.train.CheckpointManager(ckpt, cfg.checkpoint_dir, max_to_keep=2)
        if manager.latest_checkpoint:
            ckpt.restore(manager.latest_checkpoint).expect_partial()
            log(f"resumed from {manager.latest_checkpoint} at step {int(step_var.numpy())}")
    writer = tf.summary.create_file_writer(cfg.log_dir) if cfg.log_dir else None
    val_clean, val_noisy = _validation(val_data, cfg, sigma)
    history = {"step": [], "loss": [], "val_step": [], "val_loss": [], "val_psnr_gain": []}

    @tf.function(reduce_retracing=True)
    def train_step(clean, noisy):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(dae.predict_noise(noisy) - (noisy - clean)))
        grads = tape.gradient(loss, dae.trainable_variables)
        opt.apply_gradients(zip(grads, dae.trainable_variables))
        return loss

    @tf.function(reduce_retracing=True)
    def denoise(noisy):
        return noisy - dae.predict_noise(noisy)

    def evaluate():
        out = np.concatenate([denoise(val_noisy[i:i + 16]).numpy()
                              for i in range(0, len(val_noisy), 16)])
        mse = float(np.mean((out - val_clean) ** 2))
        mse_in = float(np.mean((val_noisy - val_clean) ** 2))
        return mse, 10 * np.log10(mse_in / max(mse, 1e-20))

    from tfrestore import engine as E
    batches = iter(_batches(train_data, cfg, sigma, int(step_var.numpy())))

    def step_fn(i):
        clean, noisy = next(batches)
        loss = train_step(clean, noisy)
        step_var.assign(i + 1)
        return loss, {}, sched(i + 1)

    class Record(E.Callback):
        """Training curve every `log_every` steps; validation, TensorBoard scalars and the
        export of the best model every `eval_every` steps."""

        def on_step_end(self, loop, logs):
            t = logs.step
            if t % cfg.log_every == 0 or t == steps:
                history["step"].append(t)
                history["loss"].append(logs.loss)
            if not (t % cfg.eval_every == 0 or t == steps):
                return
            vl, gain = evaluate()
            history["val_step"].append(t)
            history["val_loss"].append(vl)
            history["val_psnr_gain"].append(gain)
            log(f"step {t}: loss {logs.loss:.4g} val {vl:.4g} gain {gain:.3f} dB")
            if writer:
                with writer.as_default(step=t):
                    summaries.scalar("val/loss", vl)
                    summaries.scalar("val/psnr_gain_db", gain)
            if vl < float(best_val.numpy()):
                best_val.assign(vl)
                if on_export:
                    on_export(dae)

    class Save(E.Callback):
        def on_step_end(self, loop, logs):
            if manager and (logs.step % cfg.checkpoint_every == 0 or logs.step == steps
                            or loop.stop_reason):
                manager.save(checkpoint_number=logs.step)

    class StopAfter(E.Callback):
        def on_step_end(self, loop, logs):
            if stop_after and logs.step - loop.start_step >= stop_after:
                loop.stop("interrupted")

    callbacks = [E.NanGuard(), Record(), Save(), StopAfter(), E.ProgressBar(cfg.log_every)]
    if cfg.log_dir:
        callbacks.append(E.TensorBoard(cfg.log_dir, cfg.log_every, prefix="train"))
    start = int(step_var.numpy())
    result = E.Loop(opt).run(steps, callbacks, step_fn, start_step=start)
    if writer:
        writer.flush()
    history["seconds"] = result.seconds
    history["steps_run"] = result.steps - start
    history["best_val_loss"] = float(best_val.numpy())
    return history
