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

__all__ = ["IMAGE_EXTENSIONS", "MIN_IMAGE_SIDE", "ImageInputError", "LoadedImages",
           "check_rgb_batch", "list_image_files", "load_image", "load_images",
           "read_image_list", "resize_and_crop", "skimage_photo_names", "split_sources",
           "tfds_images"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# Colour or grey photographs shipped inside the scikit-image wheel (no network needed).
_SKIMAGE_PHOTOS = ("astronaut", "camera", "cat", "chelsea", "coffee", "hubble_deep_field",
                   "immunohistochemistry", "moon", "retina", "rocket",
                   "page", "text", "coins", "grass", "gravel", "brick", "colorwheel")

# Smaller images are refused: upsampling them to a network's input invents the content.
MIN_IMAGE_SIDE = 8


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


def check_rgb_batch(images, size=None, what="images"):
    """`images` as float32 [N, H, W, 3] RGB 0-255, or an ImageInputError saying what is off.

    The one check of images handed to the API (inversion, evaluation, classification):
    a batch dimension, three channels, finite values, the 0-255 range (a 0-1 image is
    the common mistake), and the classifier's input size `size` (H, W) if given.
    """
    arr = np.asarray(images, np.float32)
    if arr.ndim != 4 or arr.shape[-1] != 3 or not arr.size:
        raise ImageInputError(f"{what}: expected a batch [N, H, W, 3] of RGB images, got shape "
                              f"{arr.shape}" + ("; add the batch dimension with "
                              "images[None]." if arr.ndim == 3 else "."))
    if size is not None and tuple(arr.shape[1:3]) != tuple(size):
        raise ImageInputError(f"{what}: images of {arr.shape[1]}x{arr.shape[2]} pixels do not fit "
                              f"the classifier's input {size[0]}x{size[1]}; load them with "
                              f"tfrestore.data.load_images(..., size="
                              f"{size[0] if size[0] == size[1] else tuple(size)}).")
    if not np.all(np.isfinite(arr)):
        raise ImageInputError(f"{what}: {int(np.sum(~np.isfinite(arr)))} values are NaN or "
                              f"infinite; images must be finite RGB 0-255.")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -0.5 or hi > 255.5:
        raise ImageInputError(f"{what}: values span [{lo:.4g}, {hi:.4g}]; expected RGB in the "
                              f"range 0-255.")
    if 0 < hi <= 1.0:
        raise ImageInputError(f"{what}: values span [{lo:.4g}, {hi:.4g}], which looks like a 0-1 "
                              f"scale; expected RGB in the range 0-255 (multiply by 255).")
    return arr


def resize_and_crop(image, size, name="image"):
    """Resize the short side to `size` (int or (H, W)) and centre-crop; float32 0-255."""
    h_t, w_t = (size, size) if np.isscalar(size) else tuple(size)
    image = _to_rgb(image)
    h, w = image.shape[:2]
    if min(h, w) < MIN_IMAGE_SIDE:
        raise ImageInputError(f"{name} is {h}x{w} pixels; images need at least "
                              f"{MIN_IMAGE_SIDE} pixels per side (a smaller one would be "
                              f"upsampled to {h_t}x{w_t}, inventing its content).")
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
        raise ImageInputError(f"Image '{path}' cannot be decoded: it is not a JPEG, PNG, GIF "
                              f"or BMP image.") from e
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


def _tfds_data_dir():
    return os.environ.get("TFDS_DATA_DIR",
                          os.path.join(os.path.expanduser("~"), "tensorflow_datasets"))


def tfds_images(spec, size):
    """'tfds:NAME[:SPLIT[:COUNT]]' -> (images at `size`, names)."""
    usage = "use tfds:NAME[:SPLIT[:COUNT]], e.g. tfds:imagenette:validation:10"
    parts = spec.split(":")
    if len(parts) < 2 or not parts[1] or len(parts) > 4:
        raise ImageInputError(f"Bad dataset spec '{spec}': {usage}.")
    name = parts[1]
    split = parts[2] if len(parts) > 2 and parts[2] else "train"
    count = None
    if len(parts) > 3:
        try:
            count = int(parts[3])
        except ValueError:
            count = 0
        if count < 1:
            raise ImageInputError(f"Bad dataset spec '{spec}': the COUNT '{parts[3]}' must be a "
                                  f"whole number >= 1 ({usage}).")
    try:
        import tensorflow_datasets as tfds
        ds = tfds.load(name, split=split, shuffle_files=False)
    except Exception as e:  # noqa: BLE001  (tfds raises many types, ImportError included)
        data_dir = _tfds_data_dir()
        prepared = os.path.isdir(os.path.join(data_dir, name))
        where = ("" if prepared else f" It is not prepared in {data_dir}, so tfds must "
                 f"download it, which fails offline: prepare it on a connected machine "
                 f"(tfds build {name}) and copy {data_dir}, or pass image files instead.")
        raise ImageInputError(f"tensorflow-datasets cannot load '{name}' split '{split}'."
                              f"{where} (tfds: {type(e).__name__}: {e})") from e
    if count:
        ds = ds.take(count)
    images, names = [], []
    for i, ex in enumerate(tfds.as_numpy(ds)):
        names.append(f"tfds:{name}:{split}:{i}")
        images.append(resize_and_crop(ex["image"], size, names[-1]))
    if not images:
        raise ImageInputError(f"Dataset spec '{spec}' yielded no images.")
    return images, names


def split_sources(text):
    """Split a comma-separated source list; a path that exists with its commas stays whole."""
    tokens = text.split(",")
    out, i = [], 0
    while i < len(tokens):
        j = next((j for j in range(len(tokens), i + 1, -1)
                  if os.path.exists(",".join(tokens[i:j]))), i + 1)
        out.append(",".join(tokens[i:j]))
        i = j
    return [t for t in out if t.strip()]


def load_images(sources, size, limit=None):
    """Load and crop images from files, folders, photo names and tfds specs.

    Args:
      sources: a string (comma-separated allowed) or a list of strings.
      size: int or (H, W) target size.
      limit: keep at most this many images (in order).
    Raises:
      ImageInputError: for a missing, unreadable or empty source.
    """
    sizes = (size,) if np.isscalar(size) else tuple(size)
    if len(sizes) not in (1, 2) or any(int(v) != v or v < 1 for v in sizes):
        raise ImageInputError(f"size={size!r}: images are loaded at a size of whole pixels "
                              f">= 1 (an int or (H, W)).")
    if limit is not None and (isinstance(limit, bool) or int(limit) != limit or limit < 1):
        raise ImageInputError(f"limit={limit!r}: must be a whole number of images >= 1 "
                              f"(or unset for all).")
    if isinstance(sources, str):
        sources = split_sources(sources)
    if not sources:
        raise ImageInputError("No images given: pass a file, a folder, a scikit-image "
                              f"photo name ({', '.join(_SKIMAGE_PHOTOS[:6])}, ...) "
                              "or tfds:NAME:SPLIT:COUNT.")
    images, paths = [], []
    for src in sources:
        src = src if os.path.exists(src) else src.strip()
        if src.startswith("tfds:"):
            imgs, names = tfds_images(src, size)
            images += imgs
            paths += names
        elif os.path.isdir(src) or (src.endswith(".txt") and os.path.isfile(src)):
            files = list_image_files(src) if os.path.isdir(src) else read_image_list(src)
            for f in files:
                if limit and len(images) >= limit:
                    break
                images.append(resize_and_crop(load_image(f), size, f"Image '{f}'"))
                paths.append(f)
        elif os.path.exists(src):
            images.append(resize_and_crop(load_image(src), size, f"Image '{src}'"))
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
