"""Resume only what was started with the same settings.

A long run (training, a long inversion) records the settings that matter in
`FOLDER/run_settings.json` beside its checkpoints. Resuming into the folder with
different settings raises `SettingsMismatchError` naming every differing setting and the
way to start afresh, instead of silently continuing another run.
"""
import json
import os
import shutil

from tfrestore.io import write_json

__all__ = ["SettingsMismatchError", "check_settings", "SETTINGS_FILE"]

SETTINGS_FILE = "run_settings.json"


class SettingsMismatchError(ValueError):
    pass


def _normalise(obj):
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def check_settings(folder, settings, fresh=False, fresh_hint="--fresh"):
    """Record `settings` in `folder`, or check them against the recorded ones.

    Args:
      folder: the checkpoint folder (created).
      settings: JSON-able dict of the settings a resumed run must share.
      fresh: delete the folder's previous contents (checkpoints included) first.
      fresh_hint: how the user asks for a fresh start (named in the error).
    """
    if fresh and os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, SETTINGS_FILE)
    new = _normalise(settings)
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if diff:
            shown = "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:6])
            raise SettingsMismatchError(
                f"{folder} holds a run with other settings ({shown}"
                f"{'; ...' if len(diff) > 6 else ''}); resume with the same settings, or "
                f"start afresh with {fresh_hint} (deletes its checkpoints) or another folder.")
        return False
    elif any(n.startswith("ckpt") or n == "checkpoint" for n in os.listdir(folder)):
        raise SettingsMismatchError(
            f"{folder} holds checkpoints without a record of their settings; start afresh "
            f"with {fresh_hint} or use another folder.")
    write_json(path, new)
    return True
