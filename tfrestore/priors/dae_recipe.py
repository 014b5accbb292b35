"""End-to-end recipe behind `bin/train_dae.py`: images (or a classifier's feature maps) ->
split by image -> normalisation -> DAE training -> saved `.keras` and JSON record."""
import os

import numpy as np

__all__ = ["train_dae_prior", "IMAGE_SCALE"]

# Images are normalised to [0, 1]: σ_DAE = 25 (0-255) is sigma = 25/255.
IMAGE_SCALE = 255.0

# Settings that decide a trained DAE: a resumed run must share them (tfrestore.runstate).
RESULT_SETTINGS = ("images", "image_size", "max_images", "grey", "classifier", "weights",
                   "weights_seed", "layer", "sigma", "blind_max", "init", "features",
                   "dilations", "linear_skip", "val_fraction", "val_images", "steps",
                   "batch_size", "crop", "lr", "seed", "eval_every")


def train_dae_prior(images, output, image_size=180, max_images=0, grey=False,
                    classifier=None, weights="imagenet", weights_seed=0, layer=None,
                    sigma=25.0, features=32, dilations=(1, 2, 3, 4, 3, 2), val_fraction=0.1,
                    val_images=None, steps=4000, batch_size=16, crop=40, lr=1e-3, seed=0,
                    eval_every=250, checkpoint_dir=None, checkpoint_every=250,
                    tensorboard_dir=None, blind_max=0.0, init=None, log=print,
                    fresh=False, linear_skip=False):
    """Train and save a DAE prior; returns (dae, record).

    `sigma` is in natural units for images (0-255) and in units of each channel's std for
    feature maps. `init`: a saved DAE (.keras) whose architecture and weights start the
    training (fine-tuning, e.g. from σ-specific to blind); its normalisation must match.
    `linear_skip`: give the denoiser a linear path across channels, started at the training
    data's best pointwise linear denoiser (`dae.fit_linear_skip`). The held-out images
    (split by image, the same seeded split as `bin/train_prior.py`) give the validation
    loss; their names go into the record.
    """
    from tfrestore.data.images import load_images
    from tfrestore.data.patches import channel_statistics, feature_maps, split_by_image
    from tfrestore.io import cap_steps, environment_info, write_json
    from tfrestore.priors.dae import (DAETrainConfig, DenoisingAutoencoder, fit_linear_skip,
                                      train_dae)
    from tfrestore.priors.denoising import luminance
    from tfrestore.priors.recipe import save_prior

    if not output.endswith(".keras"):
        raise ValueError(f"DAE output '{output}' must end in .keras.")
    if sigma <= 0:
        raise ValueError(f"--sigma must be positive, got {sigma}.")
    settings = {k: v for k, v in locals().items() if k not in ("log", "fresh")
                and not callable(v) and not k[0].isupper() and k != "np"}
    settings["dilations"] = [int(d) for d in dilations]
    settings["steps"] = cap_steps(steps)
    from tfrestore.io import portable_path, portable_record
    # Records carry no machine's absolute paths (the same rule as every recorder).
    for key in ("images", "output", "classifier", "checkpoint_dir", "tensorboard_dir", "init"):
        settings[key] = portable_record(settings.get(key))
    if checkpoint_dir:
        from tfrestore.runstate import check_settings
        # --steps as given: $TFRESTORE_MAX_STEPS is a smoke-test cap, not a setting.
        if check_settings(checkpoint_dir, dict({k: settings[k] for k in RESULT_SETTINGS},
                                               steps=steps), fresh=fresh) == "fresh":
            log(f"--fresh: deleted the earlier run in {checkpoint_dir}")
    metadata = {"source": ",".join(portable_record(
                    images.split(",") if isinstance(images, str) else list(images))),
                "kind": "dae", "sigma_natural": f"{sigma:g}" if not layer else "",
                "space": "grey_0_255" if grey else "rgb_0_255"}
    if blind_max > 0:   # trained on every σ in [0, blind_max]: σ is then only nominal
        metadata["blind_max"] = f"{blind_max:g}"
    if classifier or layer:
        if not (classifier and layer):
            raise ValueError("Feature-map DAEs need both --classifier and --layer.")
        if grey:
            raise ValueError("--grey is for image DAEs, not feature maps.")
        from tfrestore.classifiers import load_classifier
        clf = load_classifier(classifier, weights=weights, seed=weights_seed)
        clf.resolve(layer)
        loaded = load_images(images, clf.input_size, limit=max_images or None)
        arrays = feature_maps(clf, layer, loaded.images)
        metadata.update(classifier=clf.name, weights=clf.describe()["weights"], layer=layer,
                        space="raw_activations", sigma_normalised=f"{sigma:g}")
    else:
        loaded = load_images(images, image_size, limit=max_images or None)
        arrays = luminance(loaded.images) if grey else loaded.images
        metadata["image_size"] = str(image_size)
    names = loaded.paths
    train_idx, val_idx = split_by_image(names, val_fraction, seed, val_images)
    train, val = arrays[train_idx], arrays[val_idx]
    if layer:
        mean, std = channel_statistics(list(train))
        norm_sigma = float(sigma)
    else:
        c = arrays.shape[-1]
        mean, std = np.zeros(c, np.float32), np.full(c, IMAGE_SCALE, np.float32)
        norm_sigma = float(sigma) / IMAGE_SCALE
    log(f"{len(train)} training and {len(val)} held-out inputs of shape {arrays.shape[1:]}")
    if init:
        if linear_skip:
            raise ValueError("--linear_skip builds a new architecture; with --init the "
                             "saved DAE's architecture is used: drop one of the two.")
        from tfrestore.priors import load_prior
        start = load_prior(init).dae
        if start.channels != arrays.shape[-1]:
            raise ValueError(f"--init {init} models {start.channels} channels, the data has "
                             f"{arrays.shape[-1]}.")
        metadata["init"] = portable_path(init)
        conf = dict(start.get_config(), sigma=norm_sigma, metadata=metadata)
        conf.pop("name", None)
        dae = DenoisingAutoencoder(**conf)
        dae.set_weights(start.get_weights())
    else:
        dae = DenoisingAutoencoder(arrays.shape[-1], norm_sigma, features, dilations,
                                   seed=seed, metadata=metadata, linear_skip=linear_skip)
    dae.set_statistics(mean, std)
    if linear_skip:
        fit_linear_skip(dae, (train - mean) / std)
    log(f"DAE: {dae.count_params()} parameters, receptive field {dae.receptive_field()}, "
        f"sigma {norm_sigma:g} (normalised)")
    cfg = DAETrainConfig(steps=steps, batch_size=batch_size, crop=crop, lr=lr, seed=seed,
                         eval_every=eval_every, checkpoint_dir=checkpoint_dir,
                         checkpoint_every=checkpoint_every, log_dir=tensorboard_dir,
                         blind_max=blind_max / (IMAGE_SCALE if not layer else 1.0))
    normalise = lambda a: ((a - mean) / std).astype(np.float32)  # noqa: E731
    base = os.path.splitext(output)[0]

    def record(history, done):
        return {"kind": "dae", "dae": dae.get_config(), "done": done,
                "settings": settings,
                "train_config": {k: portable_record(v) for k, v in cfg.to_dict().items()},
                "data": {"n_train_images": len(train), "n_val_images": len(val),
                         "val_images": [os.path.basename(names[i]) for i in val_idx],
                         "norm_mean": mean.tolist(), "norm_std": std.tolist()},
                "history": history, "environment": environment_info()}

    def export(model):
        save_prior(model, output)
    history = train_dae(dae, normalise(train), normalise(val), cfg, log=log, on_export=export)
    if not os.path.exists(output):
        export(dae)
    gains = history.get("val_psnr_gain") or []
    if gains and max(gains) < 0.01:
        # Seen on random-weight AlexNet conv2/conv3 maps: the last hidden layer's ReLUs all
        # died, so r(x) = x and the prior's gradient is zero. Say so; don't ship it quietly.
        history["warning"] = (f"the DAE learned nothing: held-out gain {max(gains):.3f} dB "
                              f"at best (r(x) = x, e.g. dead ReLUs); retrain with a lower "
                              f"--lr or another --seed")
        log("WARNING: " + history["warning"])
    write_json(base + ".json", record(history, True))
    log(f"wrote {output} (best validation loss {history['best_val_loss']:.4g}) and {base}.json")
    return dae, record(history, True)
