"""Image input: files, folders, scikit-image photographs, tensorflow-datasets."""
from tfrestore.data.images import (IMAGE_EXTENSIONS, ImageInputError, LoadedImages,
                                   list_image_files, load_image, load_images, resize_and_crop,
                                   skimage_photo_names, tfds_images)

__all__ = ["IMAGE_EXTENSIONS", "ImageInputError", "LoadedImages", "list_image_files",
           "load_image", "load_images", "resize_and_crop", "skimage_photo_names",
           "tfds_images"]
