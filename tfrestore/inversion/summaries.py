"""TensorBoard summaries that work without the `tensorboard` package.

`tf.summary.scalar` / `tf.summary.image` live in the tensorboard package, which a
TensorFlow install may lack (it does here: TBNotInstalledError). These write the same
records through core `tf.summary.write` with the plugin metadata TensorBoard expects,
so the event files read the same in TensorBoard and in `tfrestore.plotting.curves`.
Call them inside `with writer.as_default(step=...)`.
"""
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

__all__ = ["scalar", "image"]


def _metadata(plugin, data_class):
    md = summary_pb2.SummaryMetadata()
    md.plugin_data.plugin_name = plugin
    md.data_class = data_class
    return md


def scalar(tag, value, step=None):
    """One float scalar (TensorBoard "scalars" plugin)."""
    return tf.summary.write(tag, tf.constant(float(value), tf.float32), step=step,
                            metadata=_metadata("scalars", summary_pb2.DATA_CLASS_SCALAR))


def image(tag, images, step=None, max_outputs=3):
    """A batch [N, H, W, 3] in [0, 1] as PNGs (TensorBoard "images" plugin)."""
    images = np.clip(np.asarray(images, np.float32)[:max_outputs], 0, 1)
    pngs = [tf.io.encode_png(tf.cast(tf.round(im * 255), tf.uint8)) for im in images]
    h, w = images.shape[1:3]
    data = tf.stack([tf.constant(str(w)), tf.constant(str(h))] + pngs)
    return tf.summary.write(tag, data, step=step,
                            metadata=_metadata("images", summary_pb2.DATA_CLASS_BLOB_SEQUENCE))
