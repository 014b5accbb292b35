"""Imported (float, dequantised) TFLite classifiers versus the TFLite interpreter.

For every .tflite file in --models_dir and every image in --images (short side resized,
centre crop to the model's input size, rounded to uint8 as both models see it):
top-1 agreement of the imported model with the interpreter, and the top-1 accuracy of
both against the label in the file name (<wnid>_<label>.JPEG; label index = rank of
the WordNet id among the sorted ids + 1, 0 being "background").

    python bench/tflite_agreement.py --models_dir ../shared/data/models \
        --images ../shared/data/imagenet_samples [--limit N] [--out results/tflite_agreement.md]
"""
import os
import sys
import time
import warnings


import numpy as np
from absl import app, flags

from tfrestore.classifiers.tflite import load_tflite
from tfrestore.data import load_images
from tfrestore.data.images import list_image_files
from tfrestore.io import atomic_write, environment_info

flags.DEFINE_string("models_dir", None, "Folder of .tflite classifiers.")
flags.DEFINE_string("images", None, "Folder of <wnid>_<label>.JPEG ImageNet images.")
flags.DEFINE_string("wnids", None, "File of the 1000 ImageNet WordNet ids, one a line "
                    "(default: the imagenet2012 list shipped inside tensorflow-datasets).")
flags.DEFINE_integer("limit", None, "Use only the first N images (sorted by name).")
flags.DEFINE_integer("batch_size", 50, "Images per batch for the imported model.")
flags.DEFINE_string("out", None, "Markdown table to write (atomically).")
flags.mark_flags_as_required(["models_dir", "images"])
FLAGS = flags.FLAGS


def imagenet_wnids(path=None):
    """The 1000 ImageNet-1k WordNet ids, sorted (the class order of the models)."""
    if path is None:
        import tensorflow_datasets
        path = os.path.join(os.path.dirname(tensorflow_datasets.__file__), "datasets",
                            "imagenet2012", "labels.txt")
    if not os.path.exists(path):
        raise app.UsageError(f"WordNet id list '{path}' does not exist; pass --wnids=FILE "
                             f"(the 1000 ImageNet ids, one a line).")
    with open(path) as f:
        wnids = sorted(line.strip() for line in f if line.strip())
    if len(wnids) != 1000:
        raise app.UsageError(f"'{path}' lists {len(wnids)} WordNet ids, expected 1000.")
    return wnids


def wnid_labels(paths, wnids):
    """Class index (1..1000, 0 = background) of each <wnid>_<label> file."""
    rank = {w: i + 1 for i, w in enumerate(sorted(wnids))}
    ids = [os.path.basename(p).split("_")[0] for p in paths]
    unknown = [p for p, w in zip(paths, ids) if w not in rank]
    if unknown:
        raise app.UsageError(f"{len(unknown)} files are not named <wnid>_<label>, e.g. "
                             f"'{unknown[0]}'.")
    return np.array([rank[w] for w in ids])


def interpreter_top1(path, images):
    import tensorflow as tf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        it = tf.lite.Interpreter(model_path=path)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    if inp["dtype"] == np.int8:
        images = images - 128.0
    top1 = []
    for img in images:
        it.set_tensor(inp["index"], img[None].astype(inp["dtype"]))
        it.invoke()
        top1.append(int(np.argmax(it.get_tensor(out["index"])[0].astype(np.float64))))
    return np.array(top1)


def evaluate(path, files, labels, batch_size):
    clf = load_tflite(path)
    images = np.round(load_images(files, clf.input_size).images)
    t0 = time.time()
    mine = np.argmax(clf.predict_proba(images, batch_size=batch_size), axis=-1)
    t_keras = time.time() - t0
    t0 = time.time()
    ref = interpreter_top1(path, images)
    t_lite = time.time() - t0
    return {"model": os.path.basename(path), "input": f"{clf.input_size[0]}x{clf.input_size[1]}",
            "n": len(files), "agree": float(np.mean(mine == ref)),
            "acc_import": float(np.mean(mine == labels)), "acc_lite": float(np.mean(ref == labels)),
            "t_keras": t_keras, "t_lite": t_lite}


def main(argv):
    del argv
    files = list_image_files(FLAGS.images)
    files = files[:FLAGS.limit] if FLAGS.limit else files
    if not files:
        raise app.UsageError(f"No images in '{FLAGS.images}'.")
    labels = wnid_labels(files, imagenet_wnids(FLAGS.wnids))
    models = sorted(os.path.join(FLAGS.models_dir, f) for f in os.listdir(FLAGS.models_dir)
                    if f.endswith(".tflite"))
    if not models:
        raise app.UsageError(f"No .tflite files in '{FLAGS.models_dir}'.")
    rows = []
    for path in models:
        r = evaluate(path, files, labels, FLAGS.batch_size)
        rows.append(r)
        print(f"{r['model']}: n={r['n']} agreement={r['agree']:.1%} "
              f"top1(import)={r['acc_import']:.1%} top1(interpreter)={r['acc_lite']:.1%} "
              f"[{r['t_keras']:.0f}s keras, {r['t_lite']:.0f}s interpreter]", flush=True)
    if FLAGS.out:
        env = environment_info()
        cmd = " ".join(["python", "bench/tflite_agreement.py"] + sys.argv[1:])
        lines = [f"`{cmd}`", "",
                 "Imported float model (weights dequantised, activations in float) versus the "
                 "TFLite interpreter, on images short-side resized and centre-cropped to the "
                 "model's input, rounded to uint8. Label index = rank of the file's WordNet id among "
                 "the 1000 sorted ImageNet ids + 1 (0 = background).", "",
                 "| model | input | images | top-1 agreement with interpreter | "
                 "top-1 accuracy, import | top-1 accuracy, interpreter |",
                 "|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['model']} | {r['input']} | {r['n']} | {r['agree']:.1%} | "
                         f"{r['acc_import']:.1%} | {r['acc_lite']:.1%} |")
        lines += ["", "Environment: " + ", ".join(
            f"{k} {env[k]}" for k in ("tensorflow", "keras", "numpy", "python", "platform")), ""]
        atomic_write(FLAGS.out, "\n".join(lines))


if __name__ == "__main__":
    app.run(main)
