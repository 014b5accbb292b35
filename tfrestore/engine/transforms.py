"""Random transforms of what the network sees (robustness, M&V 2016; lucid).

A transform is a callable `t(images, step, steps) -> images` on a batch [B, H, W, C],
drawing from its own seeded `tf.random.Generator` (checkpointed with the run, so a
resumed run draws what an uninterrupted one would). Each can switch itself off after a
fraction of the run (`until`). The image priors see the untransformed image.
"""
import tensorflow as tf

__all__ = ["draw_shift", "jitter", "Jitter", "RandomScale", "apply_transforms"]


def draw_shift(generator, max_shift):
    """Two int32 shifts uniform on {-T, ..., T} (T a scalar int tensor; T=0 -> no shift)."""
    t = tf.cast(max_shift, tf.int32)
    return generator.uniform([2], minval=-t, maxval=t + 1, dtype=tf.int32)


def jitter(images, shift):
    """Circularly translate a batch [B, H, W, C] by `shift` = (dy, dx)."""
    return tf.roll(images, shift=shift, axis=[1, 2])


def _active(step, steps, until):
    off = tf.cast(tf.round(until * tf.cast(steps, tf.float64)), tf.int32)
    return step < off


class Jitter:
    """Circular translation by (dy, dx), each uniform on {-T..T} (zero mean), until the
    fraction `until` of the run (M&V 2016: T by depth, off after 2750 of 3500 steps)."""

    def __init__(self, max_shift, until=1.0, seed=0):
        if int(max_shift) < 0:
            raise ValueError(f"Jitter needs a shift T >= 0 pixels, got {max_shift}.")
        if not 0.0 <= float(until) <= 1.0:
            raise ValueError(f"Jitter's 'until' is a fraction of the run in [0, 1], got {until}.")
        self.max_shift, self.until = int(max_shift), float(until)
        self.generator = tf.random.Generator.from_seed(seed)

    def __call__(self, images, step, steps):
        t = tf.where(_active(step, steps, self.until), self.max_shift, 0)
        return jitter(images, draw_shift(self.generator, t))

    def describe(self):
        return {"type": "jitter", "max_shift": self.max_shift, "until": self.until}


class RandomScale:
    """Zoom by a factor uniform on [1 - amount, 1 + amount] (bilinear), cropped or padded
    (reflect) back to the input size, until the fraction `until` of the run."""

    def __init__(self, amount=0.05, until=1.0, seed=1):
        if not 0.0 <= float(amount) < 1.0:
            raise ValueError(f"RandomScale amount must be in [0, 1), got {amount}.")
        self.amount, self.until = float(amount), float(until)
        self.generator = tf.random.Generator.from_seed(seed)

    def __call__(self, images, step, steps):
        factor = self.generator.uniform((), 1.0 - self.amount, 1.0 + self.amount)
        factor = tf.where(_active(step, steps, self.until), factor, 1.0)
        h, w = images.shape[1], images.shape[2]
        nh = tf.cast(tf.round(factor * h), tf.int32)
        nw = tf.cast(tf.round(factor * w), tf.int32)
        scaled = tf.image.resize(images, tf.stack([nh, nw]), method="bilinear")
        pad_h, pad_w = tf.maximum(h - nh, 0), tf.maximum(w - nw, 0)
        scaled = tf.pad(scaled, [[0, 0], [pad_h // 2, pad_h - pad_h // 2],
                                 [pad_w // 2, pad_w - pad_w // 2], [0, 0]], mode="REFLECT")
        out = tf.image.resize_with_crop_or_pad(scaled, h, w)
        return tf.ensure_shape(out, images.shape)

    def describe(self):
        return {"type": "scale", "amount": self.amount, "until": self.until}


def apply_transforms(transforms, images, step, steps):
    for t in transforms:
        images = t(images, step, steps)
    return images
