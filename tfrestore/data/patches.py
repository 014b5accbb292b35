"""Training patches for the learned priors, from images or from a classifier's feature maps.

Pipeline (`prepare_patches`):
  1. split the *images* into training and validation sets (no validation patch ever comes
     from a training image — the thesis code drew both from the same images);
  2. per-channel mean and std over all pixels of the training images (global normalisation);
  3. draw patches at seeded random positions, images drawn uniformly.
The patches stay in natural scale (RGB 0-255 or raw activations); the prior's own
`patch_coords` applies normalisation, centring and whitening, exactly as at inference.
"""
import os
from dataclasses import dataclass, field

import numpy as np

__all__ = ["PatchData", "split_by_image", "channel_statistics", "extract_patches",
           "feature_maps", "prepare_patches"]


@dataclass
class PatchData:
    train: np.ndarray               # [n_train, ph, pw, C] (channelwise: C = 1, normalised)
    val: np.ndarray                 # [n_val, ph, pw, C]
    norm_mean: np.ndarray           # [C] per-channel mean of the training images
    norm_std: np.ndarray            # [C]
    train_names: list = field(default_factory=list)
    val_names: list = field(default_factory=list)

    def describe(self):
        return {"n_train_patches": int(len(self.train)), "n_val_patches": int(len(self.val)),
                "n_train_images": len(self.train_names), "n_val_images": len(self.val_names),
                "norm_mean": self.norm_mean.tolist(), "norm_std": self.norm_std.tolist(),
                "val_images": [os.path.basename(n) for n in self.val_names]}


def split_by_image(names, val_fraction=0.1, seed=0, val_names=None, num_val=None):
    """Indices (train, val) of a split of whole images: the one train/validation split of
    the package (priors, DAEs, inverters).

    Args:
      names: one name (path) per image.
      val_fraction: share of images held out (used when `val_names`, `num_val` are None).
      seed: seed of the random choice of validation images (the first n_val of a seeded
        permutation).
      val_names: explicit held-out images, matched by base name (e.g. "n01440764_tench.JPEG").
      num_val: the number of held-out images (instead of `val_fraction`).
    """
    n = len(names)
    if val_names:
        wanted = {os.path.basename(v) for v in val_names}
        val = [i for i, nm in enumerate(names) if os.path.basename(nm) in wanted]
        missing = wanted - {os.path.basename(names[i]) for i in val}
        if missing:
            raise ValueError(f"Validation images not among the inputs: {sorted(missing)[:5]}")
    else:
        n_val = int(num_val) if num_val is not None else int(round(val_fraction * n))
        if num_val is None and val_fraction > 0 and n_val == 0 and n > 1:
            n_val = 1
        val = sorted(np.random.default_rng(seed).permutation(n)[:n_val].tolist())
    train = [i for i in range(n) if i not in set(val)]
    if not train:
        raise ValueError(f"No training images left after holding out {len(val)} of {n}.")
    return np.array(train, int), np.array(val, int)


def channel_statistics(arrays):
    """Per-channel mean and std over all pixels of a list of [H, W, C] arrays."""
    c = arrays[0].shape[-1]
    s1, s2, cnt = np.zeros(c), np.zeros(c), 0
    for a in arrays:
        a = np.asarray(a, np.float64).reshape(-1, c)
        s1 += a.sum(0)
        s2 += np.square(a).sum(0)
        cnt += len(a)
    mean = s1 / cnt
    std = np.sqrt(np.maximum(s2 / cnt - mean ** 2, 0.0))
    # A constant (e.g. dead ReLU) channel would divide by zero: give it unit scale.
    std = np.where(std > 1e-6 * max(std.max(), 1e-12), std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


def extract_patches(arrays, patch_size, count, seed=0, channelwise=False, norm=None):
    """`count` patches at seeded random positions (image chosen uniformly, then position).

    Args:
      arrays: list or array of [H, W, C] images / feature maps.
      patch_size: (ph, pw).
      channelwise: draw single-channel patches [ph, pw, 1] from a random channel, normalised
        by that channel's `norm` = (mean, std) (the channel-wise prior shares its experts
        across channels).
    Returns:
      [count, ph, pw, C or 1] float32.
    """
    ph, pw = patch_size
    rng = np.random.default_rng(seed)
    for a in arrays:
        if a.shape[0] < ph or a.shape[1] < pw:
            raise ValueError(f"An input of size {a.shape[:2]} is smaller than the "
                             f"{ph}x{pw} patch.")
    which = rng.integers(0, len(arrays), count)
    c = arrays[0].shape[-1]
    out = np.empty((count, ph, pw, 1 if channelwise else c), np.float32)
    for j, i in enumerate(which):
        a = arrays[i]
        y = rng.integers(0, a.shape[0] - ph + 1)
        x = rng.integers(0, a.shape[1] - pw + 1)
        if channelwise:
            ch = rng.integers(0, c)
            out[j, ..., 0] = (a[y:y + ph, x:x + pw, ch] - norm[0][ch]) / norm[1][ch]
        else:
            out[j] = a[y:y + ph, x:x + pw]
    return out


def feature_maps(classifier, layer, images, batch_size=16):
    """Feature maps [N, H', W', C'] of `layer` for RGB 0-255 images through the classifier."""
    model = classifier.feature_model(layer)
    out = [np.asarray(model(np.asarray(images[i:i + batch_size], np.float32), training=False))
           for i in range(0, len(images), batch_size)]
    fm = np.concatenate(out, 0)
    if fm.ndim != 4:
        raise ValueError(f"Layer '{layer}' outputs shape {fm.shape[1:]}, not a feature map "
                         "[H, W, C]: patch priors need a convolutional layer.")
    return fm.astype(np.float32)


def prepare_patches(arrays, names, patch_size, n_train, n_val, val_fraction=0.1, seed=0,
                    val_names=None, channelwise=False):
    """Split by image, compute training-image statistics and draw patches (see module doc)."""
    if len(arrays) < 2:
        raise ValueError(f"Need at least 2 images to split into training and validation, got "
                         f"{len(arrays)}.")
    tr, va = split_by_image(names, val_fraction, seed, val_names)
    if len(va) == 0:
        raise ValueError("No validation images: use val_fraction > 0 or val_names.")
    train_arr = [arrays[i] for i in tr]
    val_arr = [arrays[i] for i in va]
    mean, std = channel_statistics(train_arr)
    norm = (mean, std)
    train = extract_patches(train_arr, patch_size, n_train, seed + 1, channelwise, norm)
    val = extract_patches(val_arr, patch_size, n_val, seed + 2, channelwise, norm)
    return PatchData(train, val, mean, std, [names[i] for i in tr], [names[i] for i in va])
