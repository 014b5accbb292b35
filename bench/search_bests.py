"""The study configs' prior weights against the searches that chose them.

Every committed weight search (`bin/search_weights.py` outputs, default
results/search/converged/*.json) is grouped by what it searched: classifier (as recorded),
prior (PATH@AT), inverted layer, preset and overrides, the priors held fixed beside it and the
development images; the cells of grid extensions (several searches of one group) are pooled,
and a search without a no-prior cell borrows one of another search on the same images. A
method's prior matches a search of it alone or beside the method's other priors there. For
each prior of each method of a comparison config at each layer, this prints the searched
weights' mean SSIM, the best, whether the best is bracketed (a searched weight on each side;
w = 0 counts below) and whether the config holds it. The best is the best non-zero weight
(the method's cell shows what the prior does at its best); where no prior scored higher, the
verdict says so. A layer without a search of its own, between two searched layers, takes the
geometric mean of their bests (the study's rule; `interpolated`).

    python bench/search_bests.py --config=results/study/mobilenet_v2_config.json
    # write the searched (and interpolated) weights into the config
    python bench/search_bests.py --config=results/study/alexnet_random_config.json --write

Exit status 1 when the config disagrees with a search (without --write), so a study is
never run with weights nobody searched.
"""
import glob
import json
import math
import os
import re

from absl import flags

from tfrestore import cli

flags.DEFINE_string("config", None, "Comparison config (JSON) of bin/compare.py.")
flags.DEFINE_list("searches", ["results/search/converged/*.json"], "Search outputs of "
                  "bin/search_weights.py (globs; *_ranking.json files are skipped).")
flags.DEFINE_bool("write", False, "Write the searched and interpolated weights into --config.")
flags.DEFINE_string("output", None, "Also write the table here (Markdown).")
flags.mark_flags_as_required(["config"])
FLAGS = flags.FLAGS


def _spec(text):
    """'PATH@AT:W' -> ('PATH@AT', W); 'PATH@AT' -> ('PATH@AT', None)."""
    from tfrestore.inversion.learned import parse_prior_spec
    s = parse_prior_spec(text)
    return f"{s.path}@{s.at}", (s.weight if ":" in text.rsplit("@", 1)[-1] else None)


def load_searches(paths):
    """{group key: {weight: [per-image SSIM], ...}} pooled over searches of one group.

    A group key is (classifier record JSON, prior PATH@AT, layer, preset and overrides JSON,
    fixed priors (PATH@AT:W, sorted), images); the weight is the searched prior's (0.0 for
    the no-prior cells)."""
    groups = {}
    for path in paths:
        with open(path) as f:
            search = json.load(f)
        s = search.get("settings", {})
        if len(s.get("priors", [])) != 1:
            continue   # joint searches of several priors: not one weight per prior
        prior = _spec(s["priors"][0])[0]
        for cell in search.get("cells", {}).values():
            layer = cell["layer"]
            priors = cell.get("spec", {}).get("priors") or {}
            specs = priors.get(layer, priors.get("*", []))
            weights = [w for p, w in map(_spec, specs) if p == prior]
            key = (json.dumps(s["classifier"], sort_keys=True), prior, layer,
                   _settings(s.get("preset", "mv2016"), s["overrides"]),
                   tuple(sorted(s.get("fixed_priors", []))), tuple(s["images"]))
            groups.setdefault(key, {})[weights[0] if weights else 0.0] = \
                list(cell["per_image"]["ssim"])
    # The no-prior cell of one search is every search's at the same layer, images and
    # settings other than the prior_* ones (they only shape the prior): a group without its
    # own gets it, so a best at the grid's lowest weight can still be bracketed by zero.
    baselines = {_baseline_key(k): cells[0.0] for k, cells in groups.items()
                 if 0.0 in cells and not k[4]}
    for key, cells in groups.items():
        if 0.0 not in cells and not key[4] and _baseline_key(key) in baselines:
            cells[0.0] = baselines[_baseline_key(key)]
    return groups


def _baseline_key(key):
    clf, _, layer, settings, _, images = key
    s = json.loads(settings)
    s["overrides"] = {k: v for k, v in s["overrides"].items() if not k.startswith("prior_")}
    return clf, layer, json.dumps(s, sort_keys=True), images


def best_of(cells):
    """(best non-zero weight, bracketed, no prior is better, {weight: mean SSIM} sorted) of
    one group's {weight: per-image SSIM}. Where no weight beats no prior the best non-zero
    one is still what the method's cell runs (it shows what the prior does at its best), and
    the table says that zero was better."""
    means = {w: sum(v) / len(v) for w, v in sorted(cells.items())}
    best = max((w for w in means if w > 0), key=means.get)
    return best, min(means) < best < max(means), means.get(0.0, -1) > means[best], means


def _settings(preset, overrides):
    return json.dumps({"preset": preset, "overrides": overrides}, sort_keys=True)


def agreement(config, classifier_record, groups):
    """Rows (method, layer, prior, searched {w: mean}, best, bracketed, config weight,
    verdict) for every prior weight the config sets at one of its layers."""
    from tfrestore.inversion.methods import methods_from_config
    clf = json.dumps(classifier_record, sort_keys=True)
    layers = config["layers"]
    methods = methods_from_config(config["methods"], config.get("overrides"))
    found = {}   # (method, prior, layer) -> best_of(...)
    for method in methods:
        name, over = method.name, _settings(method.preset, method.overrides)
        for layer in layers:
            specs = method.prior_specs(layer)
            for text in specs:
                prior = _spec(text)[0]
                # searched alone, or beside the method's other priors at their weights
                others = tuple(sorted(t for t in specs if t != text))
                hits = [(fixed != others, -len(next(iter(cells.values()))), i, cells)
                        for i, ((c, p, l, o, fixed, _), cells) in enumerate(groups.items())
                        if (c, p, l, o) == (clf, prior, layer, over) and fixed in ((), others)]
                # the search with the method's other priors fixed wins, then more images
                hits = [h[-1] for h in sorted(hits, key=lambda h: h[:3])]
                if hits:
                    found[(name, prior, layer)] = best_of(hits[0])
    rows = []
    for method in methods:
        name = method.name
        for layer in layers:
            for text in method.prior_specs(layer):
                prior, weight = _spec(text)
                hit = found.get((name, prior, layer))
                if hit:
                    best, bracketed, zero, means = hit
                    verdict = ("agrees" if _same(weight, best) else "DIFFERS") + (
                        "; **no prior is better**" if zero else "")
                    rows.append((name, layer, prior, means, best, bracketed, weight, verdict))
                    continue
                want = _interpolated(found, name, prior, layer, layers)
                if want is None:
                    rows.append((name, layer, prior, {}, None, None, weight, "not searched"))
                else:
                    verdict = ("interpolated, agrees" if _same(weight, want)
                               else "interpolated, DIFFERS")
                    rows.append((name, layer, prior, {}, want, None, weight, verdict))
    return rows


def _same(a, b):
    return a is not None and b is not None and math.isclose(a, b, rel_tol=0.02)


def _interpolated(found, name, prior, layer, layers):
    """Geometric mean of the bests at the nearest searched layers on both sides, rounded to
    2 significant digits, or None."""
    i = layers.index(layer)
    below = [found[(name, prior, l)][0] for l in layers[:i] if (name, prior, l) in found]
    above = [found[(name, prior, l)][0] for l in layers[i + 1:] if (name, prior, l) in found]
    if not below or not above or below[-1] <= 0 or above[0] <= 0:
        return None
    return float(f"{math.sqrt(below[-1] * above[0]):.2g}")


def _fmt(w):
    return "–" if w is None else f"{w:g}"


def _short(w):
    """3e-07 -> 3e-7, as the configs spell weights."""
    return re.sub(r"e([+-])0(\d)", r"e\1\2", f"{w:g}")


def _indent(text):
    """The JSON file's indentation (its first indented line's), to rewrite it alike."""
    m = re.search(r"\n( +)\S", text)
    return len(m.group(1)) if m else 2


def table(rows):
    lines = ["| method | layer | prior | searched weights: mean SSIM | best | bracketed | "
             "config | verdict |", "|---|---|---|---|---|---|---|---|"]
    for name, layer, prior, means, best, bracketed, weight, verdict in rows:
        searched = ", ".join(f"{w:g}: {m:.4f}" for w, m in means.items()) or "–"
        br = "–" if bracketed is None else ("yes" if bracketed else "**no (grid edge)**")
        path, at = prior.rsplit("@", 1)
        lines.append(f"| {name} | {layer} | {os.path.basename(path)}@{at} | {searched} | "
                     f"{_fmt(best)} | {br} | {_fmt(weight)} | {verdict} |")
    return "\n".join(lines)


def written(config, rows):
    """The config with every searched or interpolated weight set (a new dict)."""
    out = json.loads(json.dumps(config))
    want = {(r[0], r[1], r[2]): r[4] for r in rows if r[4] is not None}
    for name, method in out["methods"].items():
        priors = method.get("priors") or {}
        shared = priors.get("*")
        for layer in config["layers"]:
            specs = priors.get(layer, shared)
            if not specs:
                continue
            new = []
            for text in specs:
                prior, weight = _spec(text)
                best = want.get((name, layer, prior))
                new.append(text if best is None or _same(weight, best)
                           else f"{prior}:{_short(best)}")
            if new != list(specs):
                priors[layer] = new   # a layer's own entry wins over "*"
    return out


@cli.exit_on_user_error
def main(argv):
    del argv
    from tfrestore.classifiers import load_classifier
    from tfrestore.io import atomic_write
    with open(FLAGS.config) as f:
        text = f.read()
    config = json.loads(text)
    paths = sorted(p for g in FLAGS.searches for p in glob.glob(g)
                   if not p.endswith("_ranking.json"))
    if not paths:
        raise ValueError(f"--searches {FLAGS.searches}: no search outputs there; run "
                         f"bin/search_weights.py first.")
    clf = load_classifier(config["classifier"], weights=config.get("weights", "imagenet"),
                          seed=config.get("weights_seed", 0))
    rows = agreement(config, clf.describe(), load_searches(paths))
    md = (f"# Prior weights of `{FLAGS.config}` against the searches\n\n"
          f"`{cli.command_line()}`\n\n{len(paths)} search outputs. Mean SSIM over the "
          f"development images; a config weight within 2% of the best is the same weight "
          f"(1e-6 = 1e-06).\n\n{table(rows)}\n")
    print(md)
    if FLAGS.output:
        atomic_write(FLAGS.output, md)
    if FLAGS.write:
        new = written(config, rows)
        if new != config:
            atomic_write(FLAGS.config,
                         json.dumps(new, indent=_indent(text), ensure_ascii=False) + "\n")
            print(f"wrote the searched weights into {FLAGS.config}")
        return 0
    return 1 if any("DIFFERS" in r[-1] for r in rows) else 0


if __name__ == "__main__":
    cli.run(main)
