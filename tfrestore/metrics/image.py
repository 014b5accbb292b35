"""Image-space metrics on RGB images in the 0-255 range, one value per image."""
import numpy as np
import tensorflow as tf

__all__ = ["MAX_VAL", "mse", "psnr", "ssim", "image_metrics"]

MAX_VAL = 255.0


def _pair(a, b):
    a = tf.convert_to_tensor(a, tf.float32)
    b = tf.convert_to_tensor(b, tf.float32)
    if a.shape != b.shape:
        raise ValueError(f"Metric inputs differ in shape: {a.shape} vs {b.shape}.")
    if a.shape.rank == 3:
        a, b = a[None], b[None]
    return a, b


def mse(images, reconstructions):
    """Mean squared error per image, 0-255 scale -> [N]."""
    a, b = _pair(images, reconstructions)
    return tf.reduce_mean(tf.square(a - b), axis=[1, 2, 3])


def psnr(images, reconstructions):
    """Peak signal-to-noise ratio in dB (tf.image.psnr, max_val 255) -> [N]."""
    a, b = _pair(images, reconstructions)
    return tf.image.psnr(a, b, max_val=MAX_VAL)


def ssim(images, reconstructions):
    """Structural similarity (tf.image.ssim, max_val 255, 11x11 Gaussian window) -> [N]."""
    a, b = _pair(images, reconstructions)
    return tf.image.ssim(a, b, max_val=MAX_VAL)


def image_metrics(images, reconstructions, clip=True):
    """{"mse", "psnr", "ssim"} -> numpy [N] each.

    Reconstructions are clipped to [0, 255] first (what is saved as PNG is what is scored).
    """
    rec = np.clip(reconstructions, 0, 255) if clip else reconstructions
    return {"mse": mse(images, rec).numpy(), "psnr": psnr(images, rec).numpy(),
            "ssim": ssim(images, rec).numpy()}
