"""Inverting networks trained to convergence: the plan, its runner and what gets shipped.

The plan (`_jobs()`, in priority order): random-weight AlexNet (seed 0) conv1/lin..conv5/lin,
one solo module per layer (module k inverts conv_k to conv_(k-1); the conv_k inverter of the
thesis's table is modules k..1 stacked); then the shared MobileNetV2 at expanded_conv_3_add,
_5_add, _12_add: the three solo modules (stacked), and joint and end-to-end stacks from _12_add
and from _5_add (from _3_add the stack is one module, and joint = end-to-end = solo), which
fine-tune the converged stacked modules of their levels (--init). The same five AlexNet jobs
with the real Caffe weights (`alexnet_imagenet_module1..5`, shipped as
`alexnet_imagenet_convK_stacked`: the thesis's own inverters) run only when named, since they
need bvlc_alexnet.npy (downloaded, or --alexnet_imagenet_weights=PATH):

    python bench/inverter_study.py --action=train --only='alexnet_imagenet_*'

Every job is `bin/train_inverter.py` to convergence (held-out loss, best weights kept),
resumable; features are computed once per classifier and level set (--feature_cache).

    # train every job not yet converged, one at a time, resumable (rerun to continue)
    nice -n 15 python bench/inverter_study.py --action=train --runs=runs/inverters
    # ship what converged (and, with --all, the best weights so far of the rest, marked)
    nice -n 10 python bench/inverter_study.py --action=publish --runs=runs/inverters

publish writes checkpoints/inverters/<name>.keras + .json (settings, budget, best step,
converged, curve), results/inverters/inverters.{md,json} (held-out image MSE, PSNR, SSIM,
feature NMSE per inverter, steps, converged, seconds) and results/inverters/curves.png.
"""
import json
import os
import subprocess
import sys
import time

from absl import flags

from tfrestore import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
flags.DEFINE_enum("action", "train", ["train", "publish", "list"], "What to do.")
flags.DEFINE_string("runs", "runs/inverters",
                    "Folder of the training runs (the checkout's runs/ is git-ignored).")
flags.DEFINE_string("images", os.path.normpath(os.path.join(REPO, "..", "shared", "data",
                                                             "imagenet_samples")),
                    "The ImageNet samples (700 trained on, 100 held out by the seed-0 split).")
flags.DEFINE_list("only", None, "Job names (or patterns, e.g. 'alexnet_imagenet_*') to run "
                  "(default: all but the real-weights AlexNet jobs).")
flags.DEFINE_string("alexnet_imagenet_weights", "imagenet", "Weights of the alexnet_imagenet_* "
                    "jobs: imagenet (bvlc_alexnet.npy, downloaded once) or PATH/bvlc_alexnet.npy "
                    "(offline). Study with the same value: bin/compare.py --weights.")
flags.DEFINE_bool("all", False, "publish: also unconverged jobs (marked as such).")
flags.DEFINE_string("checkpoints", os.path.join(REPO, "checkpoints", "inverters"),
                    "Where publish writes the inverters (empty: nowhere).")
flags.DEFINE_string("results", os.path.join(REPO, "results", "inverters"),
                    "Where publish writes tables and the curves figure.")
FLAGS = flags.FLAGS

# Thesis settings (REFERENCE.md §4): Adam 3e-4, the rates /3, /10, /30 (here taken at
# plateaus of the held-out loss), 15k steps (here only the cap), full resolution (227 px
# AlexNet, 224 px MobileNetV2). Batch 8, not the thesis's 32: on a shared CPU core a step of
# 32 took 60 s for AlexNet's first module, and 700 images converge in epochs, not steps --
# batch 8 gives 4x the updates per epoch for the same compute. Held-out loss every 100 steps
# (~1.1 epochs); 4 evaluations without a 0.5% improvement are a plateau.
COMMON = ["--num_val=100", "--seed=0", "--batch_size=8", "--steps=15000",
          "--schedule=plateau", "--patience=4", "--rtol=0.005", "--val_every=100",
          "--checkpoint_every=50", "--log_every=10", "--kind=deconv"]
# Solo modules start from random weights at 3e-4. Joint and end-to-end stacks start from the
# converged stacked modules of the same levels (--init; shipped by publish) at 1e-4: from
# random weights a joint stack at _12_add took ~9 s per step on the shared cores and was
# far from its plateau after 1400 of the 15k steps; fine-tuning starts near one.
SCRATCH_LR, FINE_TUNE_LR = "--lr=3e-4", "--lr=1e-4"
ALEX_BLOCKS = ["conv1/lin", "conv2/lin", "conv3/lin", "conv4/lin", "conv5/lin"]
MNV2 = ["--classifier=mobilenet_v2_tflite"]
MNV2_BLOCKS = ["expanded_conv_3_add", "expanded_conv_5_add", "expanded_conv_12_add"]


def _alexnets():
    """{net: classifier flags} of the two AlexNets: random weights (seed 0, the study's), and
    the real Caffe weights (the thesis's; from the flag, read unparsed as its default too)."""
    real = FLAGS["alexnet_imagenet_weights"].value
    if real == "random":
        raise ValueError("--alexnet_imagenet_weights=random: those are the alexnet_random_* "
                         "jobs; pass imagenet or PATH/bvlc_alexnet.npy.")
    real = real if real == "imagenet" else os.path.abspath(real)
    return {"alexnet_random": ["--classifier=alexnet", "--weights=random", "--weights_seed=0"],
            "alexnet_imagenet": ["--classifier=alexnet", f"--weights={real}"]}


def _jobs():
    jobs = []
    for net, clf in _alexnets().items():
        for i, layer in enumerate(ALEX_BLOCKS, start=1):
            jobs.append({"name": f"{net}_module{i}", "net": net, "cache": net,
                         "args": clf + [f"--blocks={','.join(ALEX_BLOCKS)}", "--mode=solo",
                                        f"--module={layer}", SCRATCH_LR],
                         # needs bvlc_alexnet.npy: trained only when named (--only)
                         "on_request": net == "alexnet_imagenet"})
    for i, layer in enumerate(MNV2_BLOCKS, start=1):
        jobs.append({"name": f"mobilenet_v2_module{i}", "net": "mobilenet_v2",
                     "args": MNV2 + [f"--blocks={','.join(MNV2_BLOCKS)}", "--mode=solo",
                                     f"--module={layer}", SCRATCH_LR], "cache": "mobilenet_v2",
                     "on_request": False})
    for depth, cache in ((3, "mobilenet_v2"), (2, "mobilenet_v2_to5")):
        layer = MNV2_BLOCKS[depth - 1]
        for mode in ("joint", "end_to_end"):
            init = os.path.join("checkpoints", "inverters", f"mobilenet_v2_{layer}_stacked.keras")
            jobs.append({"name": f"mobilenet_v2_{layer}_{mode}", "net": "mobilenet_v2",
                         "args": MNV2 + [f"--blocks={','.join(MNV2_BLOCKS[:depth])}",
                                         f"--mode={mode}", f"--init={init}", FINE_TUNE_LR],
                         "cache": cache, "on_request": False})
    return jobs


def command(job, runs):
    return ([sys.executable, os.path.join(REPO, "bin", "train_inverter.py"),
             f"--images={FLAGS.images}"] + COMMON + job["args"] +
            [f"--feature_cache={os.path.join(runs, 'features_' + job['cache'] + '.npz')}",
             f"--output_dir={os.path.join(runs, job['name'])}"])


def _info(runs, name):
    path = os.path.join(runs, name, "train_info.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _progress(runs, name):
    """'not started', or the last step and best validation loss of a run in progress."""
    path = os.path.join(runs, name, "ckpt", "history.json")
    if not os.path.exists(path):
        return "not started"
    with open(path) as f:
        history = json.load(f)
    val = [r["val_total"] for r in history if "val_total" in r]
    step = history[-1]["step"] if history else 0
    return (f"in progress or interrupted at step {step}"
            + (f", best validation loss {min(val):.4g}" if val else ""))


def _selected():
    import fnmatch
    jobs = _jobs()
    if not FLAGS.only:
        return [j for j in jobs if not j["on_request"]]
    unknown = [p for p in FLAGS.only if not any(fnmatch.fnmatchcase(j["name"], p)
                                                for j in jobs)]
    if unknown:
        raise ValueError(f"--only: no job matches {unknown}; see --action=list.")
    return [j for j in jobs if any(fnmatch.fnmatchcase(j["name"], p) for p in FLAGS.only)]


def train(runs):
    """Run every selected job that has not converged, one after another (each resumes)."""
    os.makedirs(runs, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TFRESTORE_MAX_STEPS", None)
    for job in _selected():
        info = _info(runs, job["name"])
        if info and info.get("converged"):
            print(f"{job['name']}: converged at step {info['steps_done']}, skipped", flush=True)
            continue
        cmd = command(job, runs)
        print(f"{time.strftime('%H:%M:%S')} {job['name']}: " + " ".join(cmd), flush=True)
        with open(os.path.join(runs, job["name"] + ".log"), "a") as log:
            rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        # A failed job (its log says why) does not hold up the others.
        print(f"{time.strftime('%H:%M:%S')} {job['name']}: exit {rc}"
              + (" FAILED, see its log" if rc else ""), flush=True)


@cli.exit_on_user_error
def main(argv):
    del argv
    runs = os.path.abspath(FLAGS.runs)  # the training runs start in the checkout (cwd=REPO)
    if FLAGS.action == "list":
        for job in _jobs():
            info = _info(runs, job["name"])
            if info is not None:
                state = (f"{'converged' if info['converged'] else 'stopped unconverged'} "
                         f"at step {info['steps_done']}")
            else:
                # train_info.json is written at the end; a run in progress (or interrupted)
                # has only its checkpoint's history.
                state = _progress(runs, job["name"])
            print(f"{job['name']}: {state}"
                  + (" (run only when named: --only)" if job["on_request"] else "")
                  + "\n  " + " ".join(command(job, runs)))
    elif FLAGS.action == "train":
        train(runs)
    else:
        publish(runs, FLAGS.checkpoints, FLAGS.results, FLAGS.all)


# ---------------------------------------------------------------------------- publish
def _inverters():
    """What is shipped: (name, net, classifier flags, blocks, mode, [(job, module)]).

    A stacked inverter is the solo modules 1..k, each from its own job; joint and
    end-to-end inverters are one job's whole stack."""
    out = []
    nets = [(net, ALEX_BLOCKS, clf) for net, clf in _alexnets().items()]
    for net, blocks, clf in nets + [("mobilenet_v2", MNV2_BLOCKS, MNV2)]:
        for k in range(1, len(blocks) + 1):
            out.append((f"{net}_{blocks[k - 1].replace('/lin', '')}_stacked", net, clf,
                        blocks[:k], "stacked",
                        [(f"{net}_module{i}", i) for i in range(1, k + 1)]))
    for depth in (3, 2):
        for mode in ("joint", "end_to_end"):
            layer = MNV2_BLOCKS[depth - 1]
            out.append((f"mobilenet_v2_{layer}_{mode}", "mobilenet_v2", MNV2,
                        MNV2_BLOCKS[:depth], mode, [(f"mobilenet_v2_{layer}_{mode}", 0)]))
    return out


def _flag(args, name):
    return next(a.split("=", 1)[1] for a in args if a.startswith(f"--{name}="))


def _job_state(runs, name, stack_factory):
    """(trained stack with the job's best weights, record) or None when not started."""
    from tfrestore.inverters.training import load_best_weights
    ckpt = os.path.join(runs, name, "ckpt")
    if not os.path.isdir(ckpt):
        return None
    stack = stack_factory()
    try:
        state = load_best_weights(stack, ckpt)
    except ValueError:
        return None
    hist_path = os.path.join(ckpt, "history.json")
    history = json.load(open(hist_path)) if os.path.exists(hist_path) else []
    job = next(j for j in _jobs() if j["name"] == name)
    from tfrestore.io import portable_arg, portable_record
    with open(os.path.join(ckpt, "run_settings.json")) as f:
        settings = {k: portable_record(v) for k, v in json.load(f).items()}
    return stack, {**state, "job": name, "settings": settings, "command": " ".join(
        ["nice -n 15 python"] + [portable_arg(os.path.relpath(a, REPO)
                                              if a.startswith(REPO) else a)
                                 for a in command(job, runs)[1:]]),
        "curve": [{k: r[k] for k in ("step", "time_s", "lr", "val_total", "criterion")
                   if k in r} for r in history if "val_total" in r]}


def _shipped_module(ckpt_out, job, stack_factory):
    """(stack with `job`'s trained module(s), the module's record) from a shipped inverter
    whose training record names the job, or None."""
    import glob
    from tfrestore.inverters import load_inverter
    for path in sorted(glob.glob(os.path.join(glob.escape(ckpt_out or ""), "*.json"))):
        with open(path) as f:
            entry = next((m for m in json.load(f).get("modules", []) if m.get("job") == job),
                         None)
        keras_path = os.path.splitext(path)[0] + ".keras"
        if entry is None or not os.path.exists(keras_path):
            continue
        shipped, stack = load_inverter(keras_path), stack_factory()
        # module 0: a joint or end-to-end job, which trained the whole stack
        for i in [entry["module"]] if entry["module"] else range(1, len(shipped.levels)):
            stack.inverse_modules[i - 1].set_weights(
                shipped.inverse_modules[i - 1].get_weights())
        return stack, {k: v for k, v in entry.items() if k != "module"}
    return None


def _already_shipped(ckpt_out, name, rec):
    """True when `name` is shipped from the same training state: a re-save would change the
    file's bytes (and so its SHA-256, which keys the study cells that use it) for nothing."""
    path = os.path.join(ckpt_out, f"{name}.json")
    if not os.path.exists(os.path.join(ckpt_out, f"{name}.keras")) or not os.path.exists(path):
        return False
    with open(path) as f:
        old = json.load(f)

    def state(modules):   # what was trained, not how the command line is spelled today
        return [{k: v for k, v in m.items() if k != "command"} for m in modules]
    return state(old.get("modules", [])) == state(json.loads(json.dumps(rec["modules"])))


def _shipped_record(ckpt_out, name):
    """The record shipped beside checkpoints/inverters/NAME.keras, or None."""
    path = os.path.join(ckpt_out or "", f"{name}.json")
    if not ckpt_out or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _evaluated_record(name, clf, blocks, mode, parts, states, runs, include_unconverged):
    """The stack assembled from its jobs' best weights, evaluated on the held-out images, as
    the record shipped beside it (with the stack under "stack"); None when not converged."""
    import numpy as np
    from tfrestore.inverters import build_stack, evaluate_stack
    converged = all(s[1]["converged"] for s in states)
    if not (converged or include_unconverged):
        return None
    stack = build_stack(clf, blocks=blocks)
    stack.mode = mode
    for (job, module), (src, _) in zip(parts, states):
        mods = range(1, len(blocks) + 1) if module == 0 else [module]
        for i in mods:
            stack.inverse_modules[i - 1].set_weights(src.inverse_modules[i - 1].get_weights())
    first = next(j for j in _jobs() if j["name"] == parts[0][0])
    cache = os.path.join(runs, f"features_{first['cache']}.npz")
    with np.load(cache) as z:
        val = [z[f"val{i}"] for i in range(len(blocks) + 1)]
        val_names = [str(n) for n in z["val_names"]]
    t = time.time()
    sources = list(range(1, len(blocks) + 1)) if mode == "stacked" else [len(blocks)]
    ev = evaluate_stack(stack, clf, val, sources=sources)
    return {"inverter": name, "classifier": clf.describe(), "levels": stack.levels,
            "mode": mode, "converged": converged,
            "steps": sum(s[1]["step"] for s in states),
            "train_seconds": round(sum(s[1]["seconds"] for s in states), 1),
            "eval_seconds": round(time.time() - t, 1),
            "held_out_images": [os.path.basename(n) for n in val_names],
            "held_out": ev, "valid_from": [stack.levels[s] for s in sources],
            "modules": [{"module": m, **s[1]} for (j, m), s in zip(parts, states)],
            "stack": stack}


def _table_rows(rec):
    """The rows of results/inverters/inverters.md for one inverter's record."""
    return [f"| {rec['inverter']} | {layer} | {r['image_mse']:.0f} | {r['psnr']:.2f} | "
            f"{r['ssim']:.3f} | {r['feature_nmse']:.4f} | {r['solo_module_nmse']:.4f} | "
            f"{rec['steps']} | {'yes' if rec['converged'] else '**no**'} | "
            f"{rec['train_seconds']:.0f} |"
            for layer in rec["valid_from"] for r in [rec["held_out"][layer]]]


def publish(runs, ckpt_out, results, include_unconverged):
    import tfrestore  # noqa: F401  (registers the Keras classes)
    from tfrestore.classifiers import load_classifier
    from tfrestore.inverters import build_stack, save_stack
    from tfrestore.io import atomic_write, write_json
    from tfrestore.plotting import save_validation_curves
    rows, records, curves, classifiers = [], {}, {}, {}
    job_blocks = {j["name"]: _flag(j["args"], "blocks").split(",") for j in _jobs()}
    for name, net, clf_args, blocks, mode, parts in _inverters():
        def classifier(net=net, clf_args=clf_args):  # loaded only where a run is here
            if net not in classifiers:
                weights = dict(a[2:].split("=") for a in clf_args).get("weights", "imagenet")
                classifiers[net] = load_classifier(_flag(clf_args, "classifier"),
                                                   weights=weights, seed=0)
            return classifiers[net]
        factories = [(job, lambda b=job_blocks[job]: build_stack(classifier(), blocks=b))
                     for job, _ in parts]
        states = [_job_state(runs, job, factory) for job, factory in factories]
        if all(s is None for s in states):
            # Runs absent here (trained on another machine, or cleaned up): an inverter
            # shipped from them keeps its row and curves, from its own record.
            rec = _shipped_record(ckpt_out, name)
            if rec is None:
                continue
        else:
            # A module whose run is not here (lost with an earlier sitting's runs folder, or
            # trained elsewhere) comes from a shipped inverter that holds it: the conv2
            # stack chains the shipped module 1 with module 2 trained here.
            states = [s or _shipped_module(ckpt_out, job, factory)
                      for s, (job, factory) in zip(states, factories)]
            if any(s is None for s in states):
                continue
            rec = _evaluated_record(name, classifier(), blocks, mode, parts, states, runs,
                                    include_unconverged)
            if rec is None:
                continue
            if ckpt_out and not _already_shipped(ckpt_out, name, rec):
                # (empty ckpt_out: tables and curves only, e.g. a progress report with --all)
                save_stack(rec.pop("stack"), os.path.join(ckpt_out, f"{name}.keras"))
                write_json(os.path.join(ckpt_out, f"{name}.json"), rec)
            rec.pop("stack", None)
        records[name] = {k: v for k, v in rec.items() if k != "held_out_images"}
        for module in rec["modules"]:
            curves[module["job"]] = [dict(r) for r in module["curve"]]
        rows += _table_rows(rec)
        print(rows[-1], flush=True)
    if not records:
        print("Nothing to publish yet (no converged job; --all ships unconverged ones).")
        return
    os.makedirs(results, exist_ok=True)
    save_validation_curves(os.path.join(results, "curves.png"),
                           {k: [{"val_total": r["val_total"], **r} for r in v]
                            for k, v in curves.items()})
    md = ["# Inverting networks trained to convergence", "",
          "Made by `nice -n 10 python bench/inverter_study.py --action=publish"
          + (" --all" if include_unconverged else "") + "` from the runs of "
          "`bench/inverter_study.py --action=train` (each job's command is in the "
          "inverter's `.json`).", "",
          "Training: 700 ImageNet samples (seed-0 split of `../shared/data/imagenet_samples`); "
          "held out: the other 100 (never trained on; `results/splits/` lists the 80 of them "
          "used by the study). Settings: `" + " ".join(COMMON) + "`: Adam, held-out loss "
          "every 100 steps; 4 evaluations without 0.5% relative improvement drop the rate "
          "(/3, /10, /30 of the initial rate), a plateau at the last rate is convergence; "
          "the best held-out weights are shipped. Solo modules (stacked inverters) start from "
          "random weights at `" + SCRATCH_LR + "`; joint and end-to-end stacks fine-tune the "
          "shipped stacked inverter of the same levels (`--init`) at `" + FINE_TUNE_LR + "`, "
          "and their steps and seconds do not include the stacked modules' training. Steps "
          "and seconds: summed over the modules' trainings (2 CPU cores shared with other "
          "work).", "",
          "Rows: the inverter used from *layer*: the true held-out features of that layer "
          "chained down to the image. Image MSE on RGB 0-255, PSNR (dB), SSIM; feature NMSE "
          "= ||phi(x_rec) - phi(x)||^2 / ||phi(x)||^2 at that layer; module NMSE = the "
          "module from that layer alone, on true input, vs the level below. Means over the "
          "100 held-out images. Stacked inverters are solo modules chained and are valid "
          "from every level they hold; joint and end-to-end ones from their deepest level. "
          "From expanded_conv_3_add (one module) joint = end-to-end = solo: the stacked row.",
          "", "| inverter | layer | image MSE | PSNR | SSIM | feature NMSE | module NMSE | "
          "steps | converged | seconds |", "|---|---|---|---|---|---|---|---|---|---|"] + rows
    md += ["", "Thesis-code figures (REFERENCE.md §5, real AlexNet weights, 10 images, "
           "stacked inverting nets, conv1-conv5): MSE 188 / 458 / 845 / 1023 / 1420, "
           "feature NMSE 0.013 / 0.034 / 0.062 / 0.075 / 0.098. alexnet_random_*: random "
           "AlexNet weights (seed 0); alexnet_imagenet_*: the real Caffe weights.", "",
           "![held-out loss curves](curves.png)", ""]
    atomic_write(os.path.join(results, "inverters.md"), "\n".join(md))
    write_json(os.path.join(results, "inverters.json"), {"inverters": records,
                                                         "curves": curves})
    print("\n".join(md))


if __name__ == "__main__":
    cli.run(main)
