"""Tiny networks shared by the tests of tfrestore.uses."""
import keras

from tfrestore.classifiers import Classifier


def tiny_softmax_classifier(size=16, classes=5, seed=0, labels=True, preprocessing="caffe"):
    """conv-pool-conv-GAP-dense-softmax on RGB 0-255 (caffe preprocessing)."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c1")(inp)
    x = keras.layers.MaxPooling2D(2, name="p1")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(classes, name="logits")(x)
    out = keras.layers.Softmax(name="prob")(x)
    names = [f"class{i}, synonym{i}" for i in range(classes)] if labels else None
    return Classifier("tiny", keras.Model(inp, out), preprocessing, labels=names)


def tiny_tanh_classifier(size=16, classes=5, seed=0):
    """conv(tanh)-conv(tanh)-GAP-dense on [-1, 1] inputs: roughly centred features, so its
    own argmax labels of varied images are varied (a net that 'classifies them correctly')."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="tanh", name="c1")(inp)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="tanh", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(classes, name="logits")(x)
    return Classifier("tiny_tanh", keras.Model(inp, out), "tf")
