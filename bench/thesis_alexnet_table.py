"""The thesis's AlexNet table in its own form: MSE and feature NMSE of reconstructions from
conv1-conv5 (linear outputs) for M&V 2016, inverting networks (stacked) and the FoE prior,
beside the thesis-code figures (REFERENCE.md §5: real weights, 10 ImageNet images).

Reads a comparison made by bin/compare.py (the study's AlexNet cells), e.g. with random
weights (the only AlexNet weights offline here):

  python bin/compare.py --config=results/study/alexnet_random_config.json \\
      --images=results/splits/test.txt --limit=20 --steps=3500 --output=results/study/alexnet_random
  python bench/thesis_alexnet_table.py --results=results/study/alexnet_random.json \\
      --output=results/study/alexnet_thesis_table.md

With the real Caffe weights (`bvlc_alexnet.npy`): train and publish their inverters
(`bench/inverter_study.py --action=train --only='alexnet_imagenet_*'`, then
`--action=publish`), run bin/compare.py with results/study/alexnet_imagenet_config.json
(offline: `--weights=PATH/bvlc_alexnet.npy` on both) and this script on its JSON; the
README's study section lists the commands.
"""
import json

from absl import flags

from tfrestore import cli

flags.DEFINE_string("results", None, "Comparison results (.json) of bin/compare.py.")
flags.DEFINE_string("output", None, "Markdown table to write.")
flags.DEFINE_list("layers", ["conv1/lin", "conv2/lin", "conv3/lin", "conv4/lin", "conv5/lin"],
                  "Layers (columns), as in the comparison.")
flags.DEFINE_string("mv", "M&V 2016", "Method name of M&V 2016 in the results.")
flags.DEFINE_string("inverter", "inverting network (stacked)", "Method name of the "
                    "inverting networks.")
flags.DEFINE_string("foe", "+ image FoE", "Method name of the FoE prior.")
flags.mark_flags_as_required(["results", "output"])
FLAGS = flags.FLAGS

# REFERENCE.md §5: thesis code, AlexNet (real weights), mean of 10 ImageNet images.
THESIS = {
    "thesis: M&V 2016": {"mse": [869, 1392, 1714, 2197, 3085],
                         "feature_error": [0.061, 0.096, 0.119, 0.152, 0.220]},
    "thesis: inverting nets (stacked)": {"mse": [188, 458, 845, 1023, 1420],
                                         "feature_error": [0.013, 0.034, 0.062, 0.075, 0.098]},
    "thesis: FoE prior": {"mse": [2.8, 543, 923, 1334, 2317],
                          "feature_error": [2.3e-4, 0.045, 0.073, 0.100, 0.176]},
}


@cli.exit_on_user_error
def main(argv):
    del argv
    from tfrestore.inversion.comparison import wide_table
    from tfrestore.io import atomic_write
    try:
        with open(FLAGS.results) as f:
            results = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"--results '{FLAGS.results}': cannot read a comparison JSON ({e}); "
                         f"make one with bin/compare.py.") from None
    s = results.get("settings", {})
    rows = {"M&V 2016": FLAGS.mv, "inverting nets (stacked)": FLAGS.inverter,
            "FoE prior": FLAGS.foe}
    reference = THESIS if len(FLAGS.layers) == 5 else None
    md = (f"# AlexNet: reconstructions from conv1–conv5, the thesis's table\n\n"
          f"`{cli.command_line()}`\n\n"
          f"Here: {s.get('classifier', {}).get('classifier', '?')} with weights "
          f"{s.get('classifier', {}).get('weights', '?')}, {len(s.get('images', []))} test "
          f"images, optimisation capped at {s.get('steps') or 'the preset'} steps (†: not "
          f"converged at the cap; –: not run). MSE on the 0–255 scale; feature NMSE = "
          f"‖Φ(x) − Φ0‖² / ‖Φ0‖² at the inverted layer. The thesis rows are its code's "
          f"figures with the real Caffe weights on 10 other ImageNet images (REFERENCE.md "
          f"§5): compare the form and the trend over depth, not the values.\n\n"
          + wide_table(results, FLAGS.layers, rows, reference=reference))
    atomic_write(FLAGS.output, md)
    print(md)


if __name__ == "__main__":
    cli.run(main)
