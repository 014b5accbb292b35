"""Classify images with any tfrestore classifier and print the top labels.

  python bin/classify.py --classifier=../shared/data/models/tf2_mobilenet_v2_1.0_224_ptq.tflite \
      --images=../shared/data/images --top_k=3
  python bin/classify.py --classifier=vgg16 --weights=imagenet --images=chelsea --json
"""
import json


from absl import flags

from tfrestore import cli

cli.define_classifier_flags()
flags.DEFINE_string("images", None, "Image file, folder, scikit-image photo name or "
                    "tfds:NAME:SPLIT:COUNT (comma-separated list allowed).")
flags.DEFINE_integer("top_k", 5, "How many labels per image.")
flags.DEFINE_integer("limit", None, "Classify at most this many images.")
flags.DEFINE_bool("json", False, "Print one JSON list instead of text.")
flags.mark_flag_as_required("images")
FLAGS = flags.FLAGS


@cli.exit_on_user_error
def main(argv):
    del argv
    from tfrestore.data import load_images
    clf = cli.classifier_from_flags()
    loaded = load_images(FLAGS.images, clf.input_size, limit=FLAGS.limit)
    results = clf.top_k(loaded.images, k=FLAGS.top_k)
    if FLAGS.json:
        print(json.dumps([{"path": p, "top_k": [{"index": i, "label": l, "score": s}
                                                 for i, l, s in r]}
                          for p, r in zip(loaded.paths, results)], indent=1))
        return
    for path, r in zip(loaded.paths, results):
        print(path)
        for i, label, score in r:
            print(f"  {score:7.4f}  {i:5d}  {label}")


if __name__ == "__main__":
    cli.run(main)
