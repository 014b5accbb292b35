"""Reading images into float32 RGB 0-255 arrays at a classifier's input size.

Sources (`load_images` accepts a list mixing them):
  * an image file (JPEG, PNG, BMP, GIF; grey and RGBA become RGB),
  * a folder of such files (sorted by name),
  * a list file ending in .txt: one image path per line, relative to the list's folder
    (fixed evaluation splits; lines starting with # are comments),
  * a scikit-image bundled photograph by name ("astronaut", "chelsea", "coffee", ...),
  * a tensorflow-datasets split as "tfds:NAME[:SPLIT[:COUNT]]", e.g. "tfds:imagenette:validation:10".
Every image has its short side resized to the target and is centre-cropped.
"""
import os
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

__all__ = ["IMAGE_EXTENSIONS", "ImageInputError", "LoadedImages", "list_image_files",
           "load_image", "load_images", "read_image_list", "resize_and_crop", "skimage_photo_names",
           "tfds_images"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# Colour or grey photographs shipped inside the scikit-image wheel (no network needed).
_SKIMAGE_PHOTOS = ("astronaut", "camera", "cat", "chelsea", "coffee", "hubble_deep_field",
                   "immunohistochemistry", "moon", "retina", "rocket",
                   "page", "text", "coins", "grass", "gravel", "brick", "colorwheel")


class ImageInputError(ValueError):
    """An input that is missing, unreadable or empty (the message names it)."""


@dataclass
class LoadedImages:
    images: np.ndarray            # [N, H, W, 3] float32, RGB 0-255
    paths: list = field(default_factory=list)  # one name per image

    def __len__(self):
        return len(self.paths)


def skimage_photo_names():
    return list(_SKIMAGE_PHOTOS)


def _to_rgb(arr):
    arr = np.asarray(arr)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating) and arr.max() <= 1.0:
        arr = arr * 255.0
    arr = arr.astype(np.float32)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    elif arr.shape[-1] == 4:
        arr = arr[..., :3]
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ImageInputError(f"Expected an image of shape [H, W, 1|3|4], got {arr.shape}.")
    return arr


def resize_and_crop(image, size):
    """Resize the short side to `size` (int or (H, W)) and centre-crop; float32 0-255."""
    h_t, w_t = (size, size) if np.isscalar(size) else tuple(size)
    image = _to_rgb(image)
    h, w = image.shape[:2]
    scale = max(h_t / h, w_t / w)
    new_h, new_w = max(h_t, int(round(h * scale))), max(w_t, int(round(w * scale)))
    resized = tf.image.resize(image, (new_h, new_w), method="bilinear", antialias=True)
    top, left = (new_h - h_t) // 2, (new_w - w_t) // 2
    out = resized[top:top + h_t, left:left + w_t].numpy()
    return np.clip(out, 0.0, 255.0).astype(np.float32)


def load_image(path):
    """One image file as float32 RGB 0-255 at its own size."""
    if not os.path.exists(path):
        raise ImageInputError(f"Image '{path}' does not exist.")
    if os.path.getsize(path) == 0:
        raise ImageInputError(f"Image '{path}' is an empty file.")
    try:
        data = tf.io.read_file(path)
        img = tf.io.decode_image(data, expand_animations=False).numpy()
    except Exception as e:
        raise ImageInputError(f"Cannot decode image '{path}' (supported: "
                              f"{', '.join(IMAGE_EXTENSIONS)}): {e}") from e
    return _to_rgb(img)


def list_image_files(folder):
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                   if f.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        raise ImageInputError(f"Folder '{folder}' contains no images "
                              f"({', '.join(IMAGE_EXTENSIONS)}).")
    return files


def read_image_list(list_file):
    """Paths listed in a .txt file (one per line, relative to the file's folder)."""
    folder = os.path.dirname(os.path.abspath(list_file))
    with open(list_file) as f:
        lines = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    if not lines:
        raise ImageInputError(f"Image list '{list_file}' is empty.")
    paths = [l if os.path.isabs(l) else os.path.normpath(os.path.join(folder, l))
             for l in lines]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise ImageInputError(f"Image list '{list_file}' names {len(missing)} missing "
                              f"file(s), e.g. '{missing[0]}'.")
    return paths


def _skimage_photo(name):
    import skimage.data
    return _to_rgb(getattr(skimage.data, name)())


def tfds_images(spec, size):
    """'tfds:NAME[:SPLIT[:COUNT]]' -> (images at `size`, names)."""
    import tensorflow_datasets as tfds
    parts = spec.split(":")
    if len(parts) < 2 or not parts[1]:
        raise ImageInputError(f"Bad dataset spec '{spec}': use tfds:NAME[:SPLIT[:COUNT]].")
    name = parts[1]
    split = parts[2] if len(parts) > 2 and parts[2] else "train"
    count = int(parts[3]) if len(parts) > 3 else None
    try:
        ds = tfds.load(name, split=split, shuffle_files=False)
    except Exception as e:
        raise ImageInputError(f"Cannot load tensorflow-datasets '{name}' split '{split}': "
                              f"{e}") from e
    if count:
        ds = ds.take(count)
    images, names = [], []
    for i, ex in enumerate(tfds.as_numpy(ds)):
        images.append(resize_and_crop(ex["image"], size))
        names.append(f"tfds:{name}:{split}:{i}")
    if not images:
        raise ImageInputError(f"Dataset spec '{spec}' yielded no images.")
    return images, names


def load_images(sources, size, limit=None):
    """Load and crop images from files, folders, photo names and tfds specs.

    Args:
      sources: a string (comma-separated allowed) or a list of strings.
      size: int or (H, W) target size.
      limit: keep at most this many images (in order).
    Raises:
      ImageInputError: for a missing, unreadable or empty source.
    """
    if isinstance(sources, str):
        sources = [s for s in sources.split(",") if s.strip()]
    if not sources:
        raise ImageInputError("No images given: pass a file, a folder, a scikit-image "
                              f"photo name ({', '.join(_SKIMAGE_PHOTOS[:6])}, ...) "
                              "or tfds:NAME:SPLIT:COUNT.")
    images, paths = [], []
    for src in sources:
        src = src.strip()
        if src.startswith("tfds:"):
            imgs, names = tfds_images(src, size)
            images += imgs
            paths += names
        elif os.path.isdir(src) or (src.endswith(".txt") and os.path.isfile(src)):
            files = list_image_files(src) if os.path.isdir(src) else read_image_list(src)
            for f in files:
                if limit and len(images) >= limit:
                    break
                images.append(resize_and_crop(load_image(f), size))
                paths.append(f)
        elif os.path.exists(src):
            images.append(resize_and_crop(load_image(src), size))
            paths.append(src)
        elif src in _SKIMAGE_PHOTOS:
            images.append(resize_and_crop(_skimage_photo(src), size))
            paths.append(f"skimage:{src}")
        else:
            raise ImageInputError(
                f"Image source '{src}' is neither an existing file or folder, nor a "
                f"scikit-image photo ({', '.join(_SKIMAGE_PHOTOS)}), nor tfds:NAME:SPLIT:COUNT.")
        if limit and len(images) >= limit:
            break
    if limit:
        images, paths = images[:limit], paths[:limit]
    return LoadedImages(np.stack(images).astype(np.float32), paths)
