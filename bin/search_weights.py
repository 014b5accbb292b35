"""Search the weights of learned priors on a development image set, ranked by a metric.

  python bin/search_weights.py \
      --classifier=../shared/data/models/tf2_mobilenet_v2_1.0_224_ptq.tflite \
      --layer=expanded_conv_5_add --images=results/splits/dev.txt --limit=8 \
      --prior=checkpoints/foe_8x8x3_512.keras@image --grid=1e-6,1e-5,1e-4 \
      --set=tv_weight=0 --set=prior_start=0.3 --steps=150 --metric=ssim \
      --output=results/search/mnv2_image_prior

Every combination of one weight per `--prior` (grid: the cartesian product of --grid;
random: --random=N log-uniform draws in --log_range, seeded) runs as a method of the
comparison machinery (`tfrestore.inversion.comparison`), so a search is resumable and
reports the same metrics. Writes OUTPUT.json and OUTPUT.md (ranked).
"""
import itertools


from absl import flags

from tfrestore import cli

cli.define_classifier_flags()
flags.DEFINE_list("layer", None, "Layer(s) to invert; the ranking averages over them.")
flags.DEFINE_string("images", None, "Development images (never the test images).")
flags.DEFINE_integer("limit", 8, "Number of development images.")
flags.DEFINE_multi_string("prior", [], "PATH@AT of a prior whose weight is searched.")
flags.DEFINE_multi_string("fixed_prior", [], "PATH@AT:WEIGHT of a prior kept at its weight "
                          "in every combination (e.g. the image prior found earlier).")
flags.DEFINE_list("grid", ["1e-6", "1e-5", "1e-4"], "Weights tried for every prior.")
flags.DEFINE_integer("random", 0, "If > 0: this many random draws instead of the grid.")
flags.DEFINE_list("log_range", ["1e-7", "1e-3"], "Range of the random draws (log-uniform).")
flags.DEFINE_bool("include_zero", True, "Also run without the priors (the baseline).")
flags.DEFINE_string("preset", "mv2016", "Handcrafted preset the priors are added to.")
flags.DEFINE_multi_string("set", [], "KEY=VALUE override of an inversion setting "
                          "(e.g. tv_weight=0, prior_start=0.3).")
flags.DEFINE_enum("metric", "ssim", ["ssim", "psnr", "feature_error", "mse", "perceptual"],
                  "Ranking metric.")
flags.DEFINE_string("perceptual_network", "none", "Needed only for --metric=perceptual.")
flags.DEFINE_integer("steps", None, "Optimisation steps (default: the preset's).")
flags.DEFINE_integer("seed", 0, "Seed of noise starts, jitter and random draws.")
flags.DEFINE_string("output", None, "Output prefix (.json, .md).")
cli.define_cell_run_flags()
flags.DEFINE_bool("render_only", False, "Only rank the cells already in OUTPUT.json (and its "
                  "shard files), e.g. while a long search is still running; computes nothing.")
flags.mark_flags_as_required(["layer", "images", "output"])   # --prior: checked in main
FLAGS = flags.FLAGS


def _weights(flag, values):
    """The positive finite numbers of a list flag, or an error naming the flag."""
    import math
    out = []
    for v in values:
        try:
            w = float(v)
        except ValueError:
            w = float("nan")
        if not (math.isfinite(w) and w > 0):
            raise ValueError(f"--{flag}: '{v}' is not a weight; give positive numbers, "
                             f"e.g. --{flag}={','.join(flags.FLAGS[flag].default)}.")
        out.append(w)
    return out


def weight_combinations():
    import numpy as np
    n = len(FLAGS.prior)
    if FLAGS.random < 0:
        raise ValueError(f"--random={FLAGS.random}: must be >= 0 (0: use --grid).")
    if FLAGS.random:
        log_range = _weights("log_range", FLAGS.log_range)
        if len(log_range) != 2 or log_range[0] >= log_range[1]:
            raise ValueError(f"--log_range={','.join(FLAGS.log_range)}: give LOW,HIGH with "
                             f"0 < LOW < HIGH.")
        lo, hi = np.log10(log_range)
        draws = 10 ** np.random.default_rng(FLAGS.seed).uniform(lo, hi, (FLAGS.random, n))
        combos = [tuple(float(f"{w:.3g}") for w in row) for row in draws]
    else:
        combos = list(itertools.product(_weights("grid", FLAGS.grid), repeat=n))
    return ([tuple([0.0] * n)] if FLAGS.include_zero else []) + combos


@cli.exit_on_user_error
def main(argv):
    del argv
    import numpy as np
    from tfrestore.data import load_images
    from tfrestore.inversion.comparison import (load_results, markdown_table, missing_cells,
                                                parse_shard, run_comparison, study_settings,
                                                wanted_specs)
    from tfrestore.inversion.learned import parse_prior_spec
    from tfrestore.inversion.methods import Method
    from tfrestore.priors import load_prior
    from tfrestore.io import atomic_write, write_json
    from tfrestore.metrics import make_perceptual
    shard = parse_shard(FLAGS.shard)
    if not FLAGS.prior:
        raise ValueError("--prior: name at least one prior whose weight is searched, as "
                         "PATH@AT (e.g. --prior=checkpoints/foe_8x8x3_512.keras@image).")
    if FLAGS.limit < 1:
        raise ValueError(f"--limit={FLAGS.limit}: must be >= 1.")
    overrides = {}
    for item in FLAGS.set:
        if "=" not in item:
            raise ValueError(f"--set '{item}': expected KEY=VALUE.")
        k, v = item.split("=", 1)
        overrides[k] = cli.parse_scalar(v)
    specs = [parse_prior_spec(p) for p in FLAGS.prior]
    for spec in specs:
        load_prior(spec.path)  # a missing or unreadable prior fails before any work
    methods = []
    for combo in weight_combinations():
        name = "w=" + ",".join(f"{w:g}" for w in combo)
        priors = list(FLAGS.fixed_prior) + [f"{s.path}@{s.at}:{w}"
                                            for s, w in zip(specs, combo) if w > 0]
        methods.append(Method(name=name, preset=FLAGS.preset, overrides=overrides,
                              priors={"*": priors}))
    clf = cli.classifier_from_flags()
    for layer in FLAGS.layer:
        clf.resolve(layer)
    methods[0].settings(clf, FLAGS.layer[0])  # bad --set keys fail before any work
    loaded = load_images(FLAGS.images, clf.input_size, limit=FLAGS.limit)
    perceptual = make_perceptual(FLAGS.perceptual_network)
    settings = {"priors": [f"{s.path}@{s.at}" for s in specs], "preset": FLAGS.preset,
                "fixed_priors": list(FLAGS.fixed_prior),
                "overrides": overrides, "classifier": clf.describe()}
    if FLAGS.render_only:
        full = study_settings(settings, FLAGS.steps, FLAGS.seed, loaded.paths)
        results, _, files = load_results(FLAGS.output + ".json", full,
                                         wanted_specs(FLAGS.layer, methods), log=lambda s: None)
        if not files:
            raise ValueError(f"--render_only: no cells with these settings in "
                             f"{FLAGS.output}.json or its shard files; run without it first.")
    else:
        results = run_comparison(clf, FLAGS.layer, methods, loaded.images, loaded.paths,
                                 FLAGS.output + ".json", steps=FLAGS.steps, seed=FLAGS.seed,
                                 perceptual=perceptual, settings=settings,
                                 log=lambda s: print(s, flush=True), shard=shard,
                                 **cli.cell_run_options(FLAGS.output))
    missing = missing_cells(results, FLAGS.layer, methods)
    if shard and missing and not FLAGS.render_only:
        print(f"Shard {FLAGS.shard} done; {len(missing)} cell(s) of other shards not written "
              f"yet. The last shard to finish writes {FLAGS.output}.md and the ranking (or "
              f"rerun without --shard once all are done).", flush=True)
        return
    lower = FLAGS.metric in ("feature_error", "mse", "perceptual")
    done = [k for k in (f"{l} | {m.name}" for l in FLAGS.layer for m in methods)
            if k not in missing]
    # Only finished cells count (a search still running ranks what it has; --render_only).
    per_layer = {l: {m.name: float(np.mean(results["cells"][f"{l} | {m.name}"]["per_image"]
                                           [FLAGS.metric]))
                     for m in methods if f"{l} | {m.name}" in done} for l in FLAGS.layer}
    score = {m.name: float(np.mean([per_layer[l][m.name] for l in FLAGS.layer]))
             for m in methods if all(m.name in per_layer[l] for l in FLAGS.layer)}

    def best_first(scores):
        return sorted(scores, key=lambda n: scores[n], reverse=not lower)
    ranked = best_first(score) + [m.name for m in methods if m.name not in score]
    # A layer has a best weight only once all its cells are done.
    best_per_layer = {l: best_first(per_layer[l])[0] for l in FLAGS.layer
                      if len(per_layer[l]) == len(methods)}
    cmd = cli.results_command()
    lines = [f"# Prior weight search: {clf.name}, {', '.join(FLAGS.layer)}\n", f"`{cmd}`\n",
             f"Priors (weights in this order): {', '.join(settings['priors'])}; fixed: "
             f"{', '.join(FLAGS.fixed_prior) or 'none'}. "
             f"{len(loaded)} development images. Ranked by {FLAGS.metric} "
             f"({'lower' if lower else 'higher'} is better), mean over images; per layer, "
             f"and over layers (rank).\n",
             f"| rank | weights | {' | '.join(FLAGS.layer)} | mean |",
             "|---|---|" + "---|" * (len(FLAGS.layer) + 1)]
    for i, n in enumerate(ranked):
        cells = ["–" if n not in per_layer[l] else
                 f"**{per_layer[l][n]:.4g}**" if best_per_layer.get(l) == n
                 else f"{per_layer[l][n]:.4g}" for l in FLAGS.layer]
        lines.append(f"| {i + 1 if n in score else '–'} | {n} | {' | '.join(cells)} | "
                     f"{f'{score[n]:.4g}' if n in score else '–'} |")
    lines.append("\nBest per layer: " + "; ".join(
        f"{l}: {best_per_layer.get(l, 'not all weights run yet')}" for l in FLAGS.layer) + ".")
    if missing:
        lines.append(f"\n**Incomplete:** {len(missing)} of {len(FLAGS.layer) * len(methods)} "
                     f"cells not finished yet ({', '.join(missing)}); – marks them.")
    md = "\n".join(lines) + "\n\nAll metrics:\n" + markdown_table(results, FLAGS.layer, ranked)
    atomic_write(FLAGS.output + ".md", md)
    write_json(FLAGS.output + "_ranking.json", {
        "metric": FLAGS.metric, "ranking": [{"weights": n, FLAGS.metric: score[n]}
                                            for n in ranked if n in score],
        "best": ranked[0] if score else None, "per_layer": per_layer,
        "best_per_layer": best_per_layer, "missing": missing})
    print(md)


if __name__ == "__main__":
    cli.run(main)
