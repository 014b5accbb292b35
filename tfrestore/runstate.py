"""Resume a checkpointed run only with the settings it was started with.

A training run that checkpoints into a folder records, beside the checkpoints, the
settings that decide its result (seed, steps, data split, mode, ...). A rerun into the
same folder resumes only when none of them differ; otherwise it stops with a message
that names every differing setting and the flag that starts afresh. Without this, a
rerun with a new seed silently continues the old run and records the new seed.

    from tfrestore.runstate import check_settings
    check_settings("ckpt/", {"seed": 1, "steps": 3000}, fresh=FLAGS.fresh)

Used by bin/train_prior.py and bin/train_inverter.py (and inversion checkpoints).
"""
import json
import os
import shutil

__all__ = ["SETTINGS_FILE", "SettingsMismatchError", "check_settings", "settings_diff",
           "records_up_to"]

SETTINGS_FILE = "run_settings.json"


class SettingsMismatchError(ValueError):
    """A checkpoint folder was written by a run with other settings (message names them)."""


def _normalise(settings):
    # What JSON keeps: tuples become lists, numpy scalars and other objects their str.
    def default(obj):
        if hasattr(obj, "item"):
            return obj.item()
        return str(obj)
    return json.loads(json.dumps(dict(settings), default=default, sort_keys=True))


def settings_diff(old, new):
    """['key: old -> new', ...] for every key whose value differs or exists on one side."""
    missing = object()
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, missing), new.get(key, missing)
        if a != b:
            fmt = lambda v: "(unset)" if v is missing else json.dumps(v)  # noqa: E731
            out.append(f"{key}: {fmt(a)} -> {fmt(b)}")
    return out


def check_settings(folder, settings, fresh=False, fresh_hint="--fresh", write=True):
    """Make `folder` safe to resume from with `settings`; returns what happened.

    Args:
      folder: the checkpoint folder (created if absent).
      settings: dict of the settings that decide the run's result (JSON-able values;
        leave out what may change between resumes, e.g. logging intervals).
      fresh: delete `folder` (old checkpoints included) and start a new run.
      fresh_hint: how the user asks for a fresh start (e.g. the flag), named in errors.
      write: False for the non-chief workers of a multi-worker job: check only (the chief
        alone deletes with `fresh` and records the settings).
    Returns:
      "new" (no earlier run), "fresh" (earlier run deleted), "resume" (same settings) or
      "adopted" (checkpoints from before settings were recorded: recorded now, resumed).
    Raises:
      SettingsMismatchError: the folder holds a run with other settings.
    """
    from tfrestore.io import make_folder, write_json
    settings = _normalise(settings)
    path = os.path.join(folder, SETTINGS_FILE)
    status = "new"
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise SettingsMismatchError(f"Checkpoint folder '{folder}' is a file; choose "
                                    f"another folder.")
    if fresh and not write:
        return "fresh"
    if fresh and os.path.isdir(folder):
        shutil.rmtree(folder)
        status = "fresh"
    elif os.path.isfile(path) and set(os.listdir(folder)) != {SETTINGS_FILE}:
        # (A record alone, from a run that failed before its first checkpoint, is no run.)
        try:
            with open(path) as f:
                old = json.load(f)
        except (OSError, ValueError) as e:
            raise SettingsMismatchError(f"Cannot read the settings of the run in '{folder}' "
                                        f"({path}: {e}); pass {fresh_hint} to delete it and start "
                                        f"afresh.") from e
        diff = settings_diff(old, settings)
        if diff:
            raise SettingsMismatchError(
                f"Checkpoint folder '{folder}' holds a run with other settings ("
                f"{'; '.join(diff)}). Rerun with the same settings to resume it, pass {fresh_hint} "
                f"to delete it and start afresh, or choose another folder.")
        return "resume"
    elif os.path.isdir(folder) and set(os.listdir(folder)) - {SETTINGS_FILE}:
        status = "adopted"
    if not write:
        return status
    make_folder(folder, "Checkpoint folder")
    write_json(path, settings)
    return status


def records_up_to(path, step):
    """The records ({"step": ..., ...}, a JSON list) a resumed run keeps: those of `path`
    up to the checkpoint's `step`; later ones were made after it and are redone. [] when
    the file is absent or unreadable."""
    import tensorflow as tf
    try:
        with tf.io.gfile.GFile(path) as f:
            records = json.load(f)
    except (OSError, ValueError, tf.errors.OpError):
        return []
    return [r for r in records if r["step"] <= step]
