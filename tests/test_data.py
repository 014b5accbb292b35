"""Image input: formats, colour conversion, resizing, clear errors."""
import numpy as np
import pytest
import tensorflow as tf

from tfrestore.data import ImageInputError, load_image, load_images, resize_and_crop


def write_png(path, arr):
    tf.io.write_file(str(path), tf.io.encode_png(arr))


def test_grey_and_rgba_become_rgb(tmp_path):
    grey = np.arange(48, dtype=np.uint8).reshape(6, 8, 1)
    write_png(tmp_path / "grey.png", grey)
    img = load_image(str(tmp_path / "grey.png"))
    assert img.shape == (6, 8, 3)
    np.testing.assert_array_equal(img[..., 0], img[..., 2])
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    write_png(tmp_path / "rgba.png", rgba)
    img = load_image(str(tmp_path / "rgba.png"))
    assert img.shape == (4, 4, 3) and img[0, 0, 0] == 200 and img[0, 0, 1] == 0


def test_resize_short_side_then_centre_crop():
    img = np.zeros((100, 200, 3), np.float32)
    img[:, 90:110] = 255.0  # a bright stripe in the centre column band
    out = resize_and_crop(img, 50)
    assert out.shape == (50, 50, 3)
    # the stripe (20 px of 200 -> 10 px of 100) is in the middle of the crop
    assert out[25, 25, 0] > 200 and out[25, 2, 0] < 1 and out[25, 47, 0] < 1
    assert resize_and_crop(img, (40, 60)).shape == (40, 60, 3)


def test_folder_photo_names_and_limit(tmp_path):
    for i in range(3):
        write_png(tmp_path / f"{i}.png", np.full((10, 12, 3), i * 50, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    li = load_images([str(tmp_path), "chelsea"], 8)
    assert li.images.shape == (4, 8, 8, 3) and li.images.dtype == np.float32
    assert li.paths[-1] == "skimage:chelsea" and li.paths[0].endswith("0.png")
    np.testing.assert_allclose(li.images[1], 50.0, atol=1e-3)
    assert len(load_images(str(tmp_path), 8, limit=2)) == 2
    assert len(load_images("astronaut,coffee", 16)) == 2


def test_clear_errors(tmp_path):
    with pytest.raises(ImageInputError, match="neither an existing file"):
        load_images("no_such_image.jpg", 8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageInputError, match="contains no images"):
        load_images(str(tmp_path / "empty"), 8)
    (tmp_path / "zero.png").write_bytes(b"")
    with pytest.raises(ImageInputError, match="empty file"):
        load_images(str(tmp_path / "zero.png"), 8)
    (tmp_path / "bad.jpg").write_bytes(b"this is not a jpeg")
    with pytest.raises(ImageInputError, match="cannot be decoded"):
        load_images(str(tmp_path / "bad.jpg"), 8)
    with pytest.raises(ImageInputError, match="No images"):
        load_images("", 8)
    with pytest.raises(ImageInputError, match="tfds:NAME"):
        load_images("tfds:", 8)


def test_shared_imagenet_sample(shared_data):
    import os
    folder = os.path.join(shared_data, "imagenet_samples")
    li = load_images(folder, 224, limit=3)
    assert li.images.shape == (3, 224, 224, 3)
    assert 0 <= li.images.min() and li.images.max() <= 255


def test_every_listed_photo_loads():
    from tfrestore.data import skimage_photo_names
    li = load_images(skimage_photo_names(), 16)
    assert li.images.shape == (len(skimage_photo_names()), 16, 16, 3)


def test_image_list_file(tmp_path):
    (tmp_path / "imgs").mkdir()
    for i in range(3):
        write_png(tmp_path / "imgs" / f"{i}.png", np.full((10, 12, 3), i * 40, np.uint8))
    lst = tmp_path / "list.txt"
    lst.write_text("# a comment\nimgs/2.png\nimgs/0.png\n")
    li = load_images(str(lst), 8)
    assert [p.split("/")[-1] for p in li.paths] == ["2.png", "0.png"]
    np.testing.assert_allclose(li.images[0], 80.0, atol=1e-3)
    (tmp_path / "bad.txt").write_text("imgs/9.png\n")
    with pytest.raises(ImageInputError, match="missing"):
        load_images(str(tmp_path / "bad.txt"), 8)
