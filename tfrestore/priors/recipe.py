"""End-to-end recipe behind `bin/train_prior.py`: images (or feature maps) -> patches ->
statistics and whitening -> score matching -> saved `.keras` prior, figure and JSON record."""
import math
import os

import numpy as np

__all__ = ["train_patch_prior", "train_field_prior", "field_prior_from",
           "training_arrays", "save_prior", "save_filter_figure", "check_recipe",
           "RESULT_SETTINGS", "FIELD_SETTINGS"]

# Settings that decide a trained prior: a resumed run must share them (tfrestore.runstate).
RESULT_SETTINGS = ("images", "image_size", "max_images", "classifier", "weights",
                   "weights_seed", "layer", "patch_size", "n_experts", "expert", "layout",
                   "whiten", "whiten_dims", "centre", "n_train", "n_val", "val_fraction",
                   "val_images", "steps", "batch_size", "lr", "schedule", "init_alpha", "seed",
                   "eval_every", "patience")


def check_recipe(s):
    """Reject impossible training settings (a dict of train_patch_prior's arguments)."""
    flag_names = {"image_size": "input_size", "max_images": "limit"}   # the binaries' names

    def need(ok, flag, what):
        if not ok:
            raise ValueError(f"--{flag_names.get(flag, flag)}={s[flag]!r}: {what}.")
    for name in ("image_size", "patch_size", "n_experts", "n_train", "n_val", "steps",
                 "batch_size", "eval_every", "checkpoint_every"):
        need(isinstance(s[name], (int, np.integer)) and s[name] >= 1, name,
             "must be a whole number >= 1")
    for name in ("max_images", "whiten_dims", "patience"):
        need(s[name] >= 0, name, "must be >= 0 (0: no limit / default)")
    if bool(s["classifier"]) != bool(s["layer"]):
        raise ValueError("Feature-map priors need both --classifier and --layer (image "
                         "priors neither).")
    need(s["patch_size"] <= s["image_size"], "patch_size",
         f"must be between 1 and --input_size={s['image_size']}")
    for name in ("lr", "init_alpha"):
        need(math.isfinite(s[name]) and s[name] > 0, name, "must be a finite number > 0")
    need(math.isfinite(s["val_fraction"]) and 0 < s["val_fraction"] < 1, "val_fraction",
         "must be between 0 and 1 (exclusive)")


def training_arrays(images, image_size, max_images, classifier, weights, weights_seed, layer,
                    grey, log=print):
    """What a prior models: images (RGB 0-255, or BT.601 grey) or a classifier layer's
    feature maps of them -> (arrays [n, H, W, C], names, metadata dict for the prior)."""
    from tfrestore.data.images import load_images
    from tfrestore.data.patches import feature_maps
    from tfrestore.io import portable_path, portable_record
    loaded = load_images(images, image_size, limit=max_images or None)
    arrays, names = loaded.images, loaded.paths
    metadata = {"source": ",".join(portable_record(
                    images.split(",") if isinstance(images, str) else list(images))),
                "image_size": str(image_size), "space": "rgb_0_255"}
    if classifier:
        from tfrestore.classifiers import load_classifier
        clf = load_classifier(classifier, weights=weights, seed=weights_seed)
        clf.resolve(layer)  # unknown names raise with the list of valid ones
        arrays = feature_maps(clf, layer, load_images(images, clf.input_size,
                                                      limit=max_images or None).images)
        metadata.update(classifier=clf.name, weights=portable_path(str(clf.weights)),
                        layer=layer,
                        space="raw_activations")
    if grey:
        if classifier or layer:
            raise ValueError("--grey is for image priors, not feature maps.")
        from tfrestore.priors.denoising import luminance
        arrays = luminance(arrays)   # BT.601: one channel, 0-255
        metadata["space"] = "grey_0_255"
    log(f"{len(arrays)} inputs of shape {arrays.shape[1:]}")
    return arrays, names, metadata


def save_filter_figure(prior, path, log=print, max_filters=256):
    """Filters in image space sorted by expert weight (seed Fig. 8); None if plotting fails.

    A figure is a by-product: a plotting problem must not lose a trained prior's record.
    """
    try:
        from tfrestore.plotting import filter_grid
        ph, pw = prior.patch_size
        filter_grid(path, prior.image_space_filters(), np.asarray(prior.alpha()),
                    max_filters=min(prior.n_experts, max_filters),
                    title=f"{prior.expert.name} {prior.layout} {ph}x{pw}x{prior.channels}: "
                          f"top {min(prior.n_experts, max_filters)} filters by weight")
        return path
    except Exception as e:  # noqa: BLE001
        log(f"could not draw the filter figure: {e}")
        return None


def save_prior(prior, path):
    """Save a prior as `.keras` atomically (`tfrestore.io.save_keras`)."""
    from tfrestore.io import save_keras
    return save_keras(prior, path, what="Priors")


def train_patch_prior(images, output, image_size=128, max_images=0, classifier=None,
                      weights="imagenet", weights_seed=0, layer=None, patch_size=8,
                      n_experts=512, expert="student_t", layout="full", whiten="pca",
                      whiten_dims=0, centre=True, n_train=100000, n_val=10000,
                      val_fraction=0.1, val_images=None, steps=25000, batch_size=250, lr=1.0,
                      schedule="thesis", init_alpha=0.1, seed=0, eval_every=500, patience=0,
                      checkpoint_dir=None, checkpoint_every=1000, log_dir=None,
                      strategy=None, figure=None, grey=False, log=print, fresh=False):
    """Train and save a patch prior; returns (prior, record dict). See bin/train_prior.py.

    A rerun with the same `checkpoint_dir` resumes only with the same `RESULT_SETTINGS`
    (else `tfrestore.runstate.SettingsMismatchError`); `fresh=True` deletes the old run.
    """
    import tensorflow as tf

    from tfrestore.data.patches import prepare_patches
    from tfrestore.io import (cap_steps, environment_info, make_folder, portable_record,
                              write_json)
    from tfrestore.priors.layers import PatchPrior
    from tfrestore.priors.training import TrainConfig, train_prior
    from tfrestore.priors.whitening import fit_whitening

    settings = {k: v for k, v in locals().items() if k not in ("log", "fresh")
                and not callable(v) and not k[0].isupper() and k not in ("tf", "np")}
    check_recipe(settings)
    if not output.endswith(".keras"):
        raise ValueError(f"--output='{output}': a prior is saved as .keras; end the name "
                         f"in .keras.")
    # An output folder that cannot be written fails now, not after hours of training.
    make_folder(os.path.dirname(os.path.abspath(output)), "--output's folder")
    if os.path.isdir(output):
        raise ValueError(f"--output='{output}' is a folder; give a file name ending in .keras.")
    settings["steps_requested"] = steps
    steps = cap_steps(steps)
    settings["steps"] = steps
    # Records name files as typed, or relative: never this machine's absolute paths.
    for key in ("images", "classifier", "weights", "checkpoint_dir", "log_dir", "output",
                "figure"):
        settings[key] = portable_record(settings[key])
    if checkpoint_dir:
        from tfrestore.runstate import check_settings
        # --steps as given: $TFRESTORE_MAX_STEPS is a smoke-test cap, not a setting.
        from tfrestore.distribute import is_chief
        # Multi-worker: only the chief deletes (--fresh) and records; the others check.
        status = check_settings(checkpoint_dir, dict({k: settings[k] for k in RESULT_SETTINGS},
                                                     steps=settings["steps_requested"]),
                                fresh=fresh, write=is_chief(strategy))
        if status == "fresh":
            log(f"--fresh: deleted the earlier run in {checkpoint_dir}")
    arrays, names, metadata = training_arrays(images, image_size, max_images, classifier,
                                              weights, weights_seed, layer, grey, log)
    if patch_size > min(arrays.shape[1:3]):
        raise ValueError(f"--patch_size={patch_size}: must be between 1 and "
                         f"{min(arrays.shape[1:3])}, the size of the "
                         f"{'feature maps' if layer else 'images'} ({arrays.shape[1:3]}).")
    channelwise = layout == "channelwise"
    data = prepare_patches(list(arrays), names, (patch_size, patch_size), n_train, n_val,
                           val_fraction, seed, val_images, channelwise)
    log(f"patches: {len(data.train)} train from {len(data.train_names)} images, "
        f"{len(data.val)} validation from {len(data.val_names)} held-out images")

    channels = arrays.shape[-1]
    strategy = strategy or tf.distribute.get_strategy()
    probe = PatchPrior(patch_size, channels, 1, expert, layout, centre=centre,
                       dim=None, whitening=whiten)
    probe.set_statistics(data.norm_mean, data.norm_std)
    flat = probe.patch_coords(data.train).numpy()   # normalised (+centred) patch vectors
    if layout == "separable":
        whitening = fit_whitening(flat, kind="none")
    else:
        whitening = fit_whitening(flat, whiten_dims or None, kind=whiten)
    log(f"whitening: {whitening.kind}, {whitening.input_dim} -> {whitening.dim} dims")
    with strategy.scope():
        prior = PatchPrior(patch_size, channels, n_experts, expert, layout,
                           dim=whitening.dim, centre=centre, whitening=whitening.kind,
                           init_alpha=init_alpha, seed=seed, metadata=metadata)
    prior.set_statistics(data.norm_mean, data.norm_std, whitening)
    train_z = prior.patch_coords(data.train).numpy()
    val_z = prior.patch_coords(data.val).numpy()
    cfg = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, schedule=schedule, seed=seed,
                      eval_every=eval_every, patience=patience, checkpoint_dir=checkpoint_dir,
                      checkpoint_every=checkpoint_every, log_dir=log_dir)
    hist = train_prior(prior, train_z, val_z, cfg, strategy=strategy, log=log)
    from tfrestore.distribute import barrier, is_chief
    if not is_chief(strategy):   # multi-worker: the chief writes the results
        barrier(strategy)        # ... and this worker stays in the job until it did
        log("trained (non-chief worker: the chief wrote the prior)")
        return None
    save_prior(prior, output)
    base = os.path.splitext(output)[0]
    figure = save_filter_figure(prior, figure or base + "_filters.png", log)
    record = {"prior": prior.describe(), "settings": settings, "data": data.describe(),
              "whitening_explained": float(whitening.eigenvalues.sum()
                                           / max(np.trace(np.cov(flat, rowvar=False)), 1e-12)),
              "history": hist, "figure": figure, "environment": environment_info()}
    write_json(base + ".json", record)
    barrier(strategy)   # multi-worker: the other workers leave the job together with the chief
    log(f"wrote {output} ({os.path.getsize(output) / 1e6:.2f} MB), {base}.json, {figure}")
    return prior, record


# Settings that decide a prior trained as a field (a resumed run must share them).
FIELD_SETTINGS = ("images", "image_size", "max_images", "classifier", "weights",
                  "weights_seed", "layer", "grey", "init", "init_sha256", "crop",
                  "val_fraction", "val_images", "steps", "batch_size", "lr", "schedule", "seed",
                  "eval_every", "patience")


def field_prior_from(init, metadata=None):
    """A free-norm `PatchPrior` equal to the patch-trained `init` (same statistics,
    whitening, filters and weights; its metadata updated by `metadata`): the start of field
    training."""
    from tfrestore.priors.layers import PatchPrior
    cfg = init.get_config()
    cfg.update(unit_norm=False, name=None,
               metadata=dict(cfg["metadata"], **{str(k): str(v) for k, v in
                                                 (metadata or {}).items()}))
    prior = PatchPrior(**cfg)
    prior.set_statistics(np.asarray(init.norm_mean), np.asarray(init.norm_std),
                         init.get_whitening())
    if init.layout == "separable":   # raw = outer products; their norms are folded in below
        norms = np.linalg.norm(np.asarray(init.raw_filters()), axis=0)
        prior.spatial.assign(np.asarray(init.spatial) / norms)
        prior.channel_mix.assign(np.asarray(init.channel_mix))
    else:
        prior.filters.assign(np.asarray(init.model_filters()))
    prior.log_weights.assign(np.asarray(init.log_weights))
    return prior


def train_field_prior(images, output, init, image_size=128, max_images=0, classifier=None,
                      weights="imagenet", weights_seed=0, layer=None, grey=False, crop=40,
                      val_fraction=0.1, val_images=None, steps=4000, batch_size=16, lr=1e-2,
                      schedule="cosine", seed=0, eval_every=250, patience=0,
                      checkpoint_dir=None, checkpoint_every=500, log_dir=None, figure=None,
                      log=print, fresh=False):
    """Train a patch-trained prior further as a field (score matching on whole-image crops,
    `training.train_field`) and save it; returns (prior, record). See bin/train_prior.py
    --objective=field. The held-out images are the split of `val_fraction`/`seed` (or
    `val_images`), the same as the patch trainer's for the same settings."""
    from tfrestore.data.patches import split_by_image
    from tfrestore.io import (cap_steps, environment_info, file_sha256, make_folder,
                              portable_record, write_json)
    from tfrestore.priors import PatchPrior, load_prior
    from tfrestore.priors.training import TrainConfig, train_field

    settings = {k: v for k, v in locals().items() if k not in ("log", "fresh")
                and not callable(v) and not k[0].isupper() and k not in ("tf", "np")}
    if not output.endswith(".keras") or os.path.isdir(output):
        raise ValueError(f"--output='{output}': a prior is saved as .keras; give a file name "
                         f"ending in .keras.")
    make_folder(os.path.dirname(os.path.abspath(output)), "--output's folder")
    for name in ("steps", "batch_size", "crop", "eval_every", "checkpoint_every"):
        if not (isinstance(settings[name], (int, np.integer)) and settings[name] >= 1):
            raise ValueError(f"--{name}={settings[name]!r}: must be a whole number >= 1.")
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"--lr={lr!r}: must be a finite number > 0.")
    if not init:
        raise ValueError("--objective=field trains a prior further: name the patch-trained "
                         "prior to start from with --init=PRIOR.keras.")
    start = load_prior(init)
    if not isinstance(start, PatchPrior):
        raise ValueError(f"--init='{init}' is not a patch prior (FoE / ICA from "
                         f"bin/train_prior.py); a field is trained from one.")
    settings["init_sha256"] = file_sha256(init)
    settings["steps_requested"] = steps
    steps = cap_steps(steps)
    settings["steps"] = steps
    for key in ("images", "classifier", "weights", "checkpoint_dir", "log_dir", "output",
                "figure", "init"):
        settings[key] = portable_record(settings[key])
    if checkpoint_dir:
        from tfrestore.runstate import check_settings
        status = check_settings(checkpoint_dir, dict({k: settings[k] for k in FIELD_SETTINGS},
                                                     steps=settings["steps_requested"]),
                                fresh=fresh)
        if status == "fresh":
            log(f"--fresh: deleted the earlier run in {checkpoint_dir}")
    arrays, names, metadata = training_arrays(images, image_size, max_images, classifier,
                                              weights, weights_seed, layer, grey, log)
    if arrays.shape[-1] != start.channels:
        raise ValueError(f"--init='{init}' models {start.channels} channels, the training "
                         f"data have {arrays.shape[-1]} (--grey / --layer as it was trained).")
    if len(arrays) < 2:
        raise ValueError(f"Need at least 2 images to hold some out, got {len(arrays)}.")
    tr, va = split_by_image(names, val_fraction, seed, val_images)
    log(f"field training on {len(tr)} images, {len(va)} held out; crops {crop}x{crop}")
    prior = field_prior_from(start, dict(metadata, trained_as="field",
                                         init=portable_record(init)))
    cfg = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, schedule=schedule, seed=seed,
                      eval_every=eval_every, patience=patience, checkpoint_dir=checkpoint_dir,
                      checkpoint_every=checkpoint_every, log_dir=log_dir, log_every=50)
    hist = train_field(prior, arrays[tr], arrays[va], cfg, crop=crop, log=log)
    save_prior(prior, output)
    base = os.path.splitext(output)[0]
    figure = save_filter_figure(prior, figure or base + "_filters.png", log)
    record = {"prior": prior.describe(), "settings": settings,
              "data": {"n_train_images": len(tr), "n_val_images": len(va),
                       "val_images": [os.path.basename(names[i]) for i in va]},
              "history": hist, "figure": figure, "environment": environment_info()}
    write_json(base + ".json", record)
    log(f"wrote {output}, {base}.json, {figure}")
    return prior, record
