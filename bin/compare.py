"""Compare reconstruction methods layer by layer: the table and figure of the thesis question.

  python bin/compare.py --config=results/compare/mobilenet_v2.json \
      --images=results/splits/test.txt --limit=20 --steps=200 --output=results/compare/mobilenet_v2

The config (JSON) names the classifier, the layers, the methods (see
`tfrestore/inversion/methods.py`) and optional "overrides" every method starts from (e.g.
the convergence criterion of a study). Writes OUTPUT.json (every per-image number and each
optimisation cell's curve; resumable: a rerun continues where an interrupted one stopped,
inside a cell from its last checkpoint), OUTPUT.md (mean [95% bootstrap interval] per metric,
rows methods, columns layers, paired statistics against the baseline, steps/convergence/seconds per cell),
OUTPUT.png (rows methods, columns layers) and OUTPUT_curves.png. With
--results=DONE.json --baseline=METHOD it writes only OUTPUT.md from a finished comparison,
every method paired against METHOD instead.
"""
import json
import os


from absl import flags, logging

from tfrestore import cli

flags.DEFINE_string("config", None, "Comparison config (JSON): classifier, weights, "
                    "weights_seed, layers, methods.")
flags.DEFINE_string("images", None, "Test images (file, folder, .txt list, ...); never "
                    "used to train a prior or tune a weight.")
flags.DEFINE_integer("limit", 20, "Number of test images.")
flags.DEFINE_integer("steps", None, "Optimisation steps per method (default: presets').")
flags.DEFINE_integer("seed", 0, "Seed of noise starts and jitter.")
flags.DEFINE_list("layers", None, "Override the config's layers.")
flags.DEFINE_string("weights", None, "Override the config's weights, e.g. "
                    "PATH/bvlc_alexnet.npy for AlexNet's real weights from a file (offline); "
                    "the config's inverters must have been trained on the same weights.")
flags.DEFINE_list("methods", None, "Run only these methods of the config.")
flags.DEFINE_string("perceptual_network", "auto", "Network of the perceptual score "
                    "(auto: vgg16 if its weights are cached, else the bundled "
                    "mobilenet_v2_tflite; vgg16; a classifier name or path; none).")
flags.DEFINE_string("output", None, "Output prefix: writes .json, .md and .png.")
flags.DEFINE_bool("render_only", False, "Only write .md and .png from the cells already in "
                  "OUTPUT.json (missing cells show as -).")
flags.DEFINE_string("results", None, "Only write OUTPUT.md from the cells of this finished "
                    "comparison (.json), e.g. to pair every method against another --baseline; "
                    "computes nothing and writes no figures.")
flags.DEFINE_bool("status", False, "Only print where the study stands, cell by cell (done "
                  "with steps and ✓/†, in progress at step N, pending); computes nothing.")
flags.DEFINE_string("baseline", None, "Method the others are compared with, paired per image "
                    "(mean difference, 95% bootstrap interval, wins, Wilcoxon p); default: "
                    "the config's first method.")
cli.define_cell_run_flags()
flags.DEFINE_integer("figure_images", 3, "Reconstructions of the first this many images are "
                     "kept; OUTPUT.png shows the first, OUTPUT_fig2.png ... the others.")
flags.mark_flags_as_required(["config", "images", "output"])
FLAGS = flags.FLAGS


@cli.exit_on_user_error
def main(argv):
    del argv
    from tfrestore.classifiers import load_classifier
    from tfrestore.data import load_images
    from tfrestore.inversion.comparison import (load_results, markdown_table, missing_cells,
                                                parse_shard, run_comparison, study_settings,
                                                wanted_specs)
    from tfrestore.inversion.methods import methods_from_config
    from tfrestore.io import atomic_write, environment_info
    from tfrestore.metrics import PerceptualUnavailable, make_perceptual
    shard = parse_shard(FLAGS.shard)
    config = _read_config(FLAGS.config)
    methods = methods_from_config(config["methods"], config.get("overrides"))
    if FLAGS.methods:
        unknown = set(FLAGS.methods) - {m.name for m in methods}
        if unknown:
            raise ValueError(f"--methods {sorted(unknown)} not in the config "
                             f"({[m.name for m in methods]}).")
        methods = [m for m in methods if m.name in FLAGS.methods]
    layers = FLAGS.layers or config["layers"]
    clf = load_classifier(config["classifier"],
                          weights=FLAGS.weights or config.get("weights", "imagenet"),
                          seed=config.get("weights_seed", 0))
    for layer in layers:
        clf.resolve(layer)
    loaded = load_images(FLAGS.images, clf.input_size, limit=FLAGS.limit)
    try:
        perceptual = make_perceptual(FLAGS.perceptual_network)
    except PerceptualUnavailable as e:
        logging.warning("%s", e)
        perceptual = None
    # "auto" resolves to the network actually used (vgg16 or the bundled MobileNetV2).
    perceptual_name = perceptual.setting if perceptual else FLAGS.perceptual_network
    # Methods are recorded per cell: editing one method reruns only its cells.
    settings = {"classifier": clf.describe(), "layers_config": config["layers"],
                "perceptual_network": perceptual_name}
    # The settings the JSON's cells were recorded under (for --status and --render_only).
    full = study_settings(settings, FLAGS.steps, FLAGS.seed, loaded.paths)
    if FLAGS.status:
        from tfrestore.inversion.comparison import status_table
        results, _, files = load_results(FLAGS.output + ".json", full,
                                         wanted_specs(layers, methods), log=lambda s: None)
        print(f"{FLAGS.output}.json{' and shards' if len(files) > 1 else ''}: "
              f"{clf.name}, {len(loaded)} images, --steps={FLAGS.steps}\n")
        print(status_table(results, layers, methods, cli.cell_run_options(FLAGS.output)
                           ["work_dir"]))
        return
    if FLAGS.render_only or FLAGS.results:
        # The cells of OUTPUT.json (or --results) and of every shard's file (same settings).
        source = FLAGS.results or FLAGS.output + ".json"
        results, examples, files = load_results(source, full, wanted_specs(layers, methods))
        if not files:
            flag = "--results" if FLAGS.results else "--render_only"
            raise ValueError(f"{flag}: no results with these settings in {source} or its "
                             f"shard files; run the comparison without {flag} first.")
        if len(files) > 1 and not FLAGS.results:
            from tfrestore.io import save_npz, write_json
            write_json(FLAGS.output + ".json", results)
            save_npz(FLAGS.output + "_examples.npz", **examples)
    else:
        for method in methods:   # a wrong inverter fails here, not hours into the study
            method.check_inverters(clf, layers)
        results = run_comparison(clf, layers, methods, loaded.images, loaded.paths,
                                 FLAGS.output + ".json", steps=FLAGS.steps,
                                 seed=FLAGS.seed, perceptual=perceptual, settings=settings,
                                 log=lambda s: print(s, flush=True), shard=shard,
                                 keep_examples=FLAGS.figure_images,
                                 **cli.cell_run_options(FLAGS.output))
        missing = missing_cells(results, layers, methods)
        if shard and missing:
            print(f"Shard {FLAGS.shard} done; {len(missing)} cell(s) of other shards not "
                  f"written yet. The last shard to finish writes {FLAGS.output}.md (or rerun "
                  f"without --shard once all are done).", flush=True)
            return
    names = [m.name for m in methods]
    cmd = cli.results_command()
    env = environment_info()
    md = (f"# Method comparison: {clf.name} ({clf.describe()['weights']})\n\n`{cmd}`\n\n"
          f"{len(loaded)} test images, optimisation steps: "
          f"{f'at most {FLAGS.steps}' if FLAGS.steps else 'the presets'}"
          f" (a method's own budget wins; the budget table says what each cell ran), seed "
          f"{FLAGS.seed}; mean over images [95% bootstrap interval of the mean]. Perceptual: "
          f"{perceptual_name}"
          f"{'' if perceptual else ' (unavailable, skipped)'}. tfrestore {env['tfrestore']}, "
          f"TF {env['tensorflow']}.\n" + markdown_table(results, layers, names,
                                                             baseline=FLAGS.baseline or names[0]))
    atomic_write(FLAGS.output + ".md", md)
    if FLAGS.results:
        print(md)
        return
    _figure(FLAGS.output, loaded.images, loaded.paths, layers, names, clf.name)
    from tfrestore.plotting.curves import save_comparison_curves
    save_comparison_curves(FLAGS.output + "_curves.png", results, layers, names)
    print(md)


def _read_config(path):
    """The comparison config, or an error naming the file and what is wrong with it."""
    if not os.path.isfile(path):
        raise ValueError(f"--config '{path}' does not exist (a JSON file; see "
                         f"results/compare/mobilenet_v2_config.json).")
    with open(path) as f:
        try:
            config = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"--config '{path}' is not valid JSON: {e}.") from None
    if not isinstance(config, dict):
        raise ValueError(f"--config '{path}' must hold a JSON object with keys classifier, "
                         f"layers and methods.")
    missing = [k for k in ("classifier", "layers", "methods") if k not in config]
    if missing:
        raise ValueError(f"--config '{path}' lacks {', '.join(missing)} (a comparison config "
                         f"names the classifier, its layers and the methods).")
    if not isinstance(config.get("overrides", {}), dict):
        raise ValueError(f"--config '{path}': \"overrides\" must be an object of settings "
                         f"(e.g. {{\"converge_rtol\": 1e-3}}).")
    return config


def _figure(prefix, images, paths, layers, names, title):
    """Rows methods, columns layers: OUTPUT.png for the first image, OUTPUT_figK.png for
    the K-th (as many as the cells kept)."""
    import numpy as np
    from tfrestore.plotting import save_reconstruction_grid
    ex = np.load(prefix + "_examples.npz")
    kept = max([len(ex[k]) for k in ex.files] or [1])
    for i in range(min(kept, len(images))):
        rows = {n: [ex[f"{l} | {n}"][i] if f"{l} | {n}" in ex and len(ex[f"{l} | {n}"]) > i
                    else None for l in layers] for n in names}
        path = prefix + (".png" if i == 0 else f"_fig{i + 1}.png")
        save_reconstruction_grid(path, images[i], rows, layers,
                                 title=f"{title}: {os.path.basename(paths[i])}")


if __name__ == "__main__":
    cli.run(main)
