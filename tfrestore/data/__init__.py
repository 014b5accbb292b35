"""Image input: files, folders, scikit-image photographs, tensorflow-datasets."""
from tfrestore.data.images import (IMAGE_EXTENSIONS, MIN_IMAGE_SIDE, ImageInputError,
                                   LoadedImages, check_rgb_batch, list_image_files, load_image,
                                   load_images, resize_and_crop, skimage_photo_names,
                                   split_sources, tfds_images)

__all__ = ["IMAGE_EXTENSIONS", "MIN_IMAGE_SIDE", "ImageInputError", "LoadedImages",
           "check_rgb_batch", "list_image_files", "load_image", "load_images",
           "resize_and_crop", "skimage_photo_names", "split_sources", "tfds_images"]
