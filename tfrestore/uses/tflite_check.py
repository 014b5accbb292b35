"""Classify 8-bit images with tf.lite.Interpreter on a classifier's original .tflite file:
what the deployed (quantised) model says about images made with its float import."""
import os
import warnings

import numpy as np

__all__ = ["tflite_file", "interpreter_scores"]


def tflite_file(classifier):
    """Path of the .tflite file a classifier was imported from, or None."""
    w = str(getattr(classifier, "weights", ""))
    return w if w.endswith(".tflite") and os.path.exists(w) else None


def interpreter_scores(path, images):
    """[N, classes] float scores of the interpreter for RGB 0-255 images (rounded to uint8,
    as a saved PNG is; int8 inputs are shifted by -128)."""
    import tensorflow as tf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        it = tf.lite.Interpreter(model_path=path)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    images = np.clip(np.round(np.asarray(images, np.float32)), 0, 255)
    if inp["dtype"] == np.int8:
        images = images - 128.0
    elif inp["dtype"] == np.float32:
        raise ValueError(f"{os.path.basename(path)} takes float input: its preprocessing is "
                         f"unknown here; use the imported classifier instead.")
    scores = []
    for img in images:
        it.set_tensor(inp["index"], img[None].astype(inp["dtype"]))
        it.invoke()
        q = it.get_tensor(out["index"])[0].astype(np.float64)
        scale, zero = out.get("quantization", (0.0, 0))
        scores.append((q - zero) * scale if scale else q)
    return np.asarray(scores)
