"""Writing outputs so that nothing half-written is ever left behind.

Every file goes to a temporary name in the same folder and is renamed into place
(atomic on POSIX), so an interrupted run never leaves a truncated PNG, JSON or npz.
"""
import contextlib
import io
import json
import os
import platform
import sys
import tempfile

import numpy as np

__all__ = ["atomic_write", "atomic_open", "write_json", "save_npz", "save_png", "save_keras",
           "environment_info", "cap_steps", "MAX_STEPS_ENV", "portable_path", "portable_record",
           "portable_arg", "read_keras", "make_folder", "file_sha256"]

# Tests and CI shorten every optimisation and training loop through this variable.
MAX_STEPS_ENV = "TFRESTORE_MAX_STEPS"


def cap_steps(steps):
    """`steps`, or fewer when $TFRESTORE_MAX_STEPS is set (tests, CI, smoke runs)."""
    cap = os.environ.get(MAX_STEPS_ENV)
    return min(int(steps), int(cap)) if cap else int(steps)


def portable_path(path):
    """`path` as recorded in outputs: relative when under the working folder, else the
    bare file name for an absolute path (records must not carry this machine's layout)."""
    if not isinstance(path, str) or not os.path.isabs(path):
        return path
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else os.path.basename(path.rstrip("/")) or path


def portable_record(value):
    """`value` with every path in it made `portable_path`: a comma-separated string or a
    list of paths (how the binaries' flags give files); anything else is returned as is."""
    if isinstance(value, str):
        return ",".join(portable_path(p) for p in value.split(","))
    if isinstance(value, (list, tuple)) and all(isinstance(p, str) for p in value):
        return [portable_path(p) for p in value]
    return value


def make_folder(path, what="folder"):
    """Create folder `path` (and parents), or a ValueError naming `what` and the cause."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        part = path
        while part and not os.path.exists(part):
            part = os.path.dirname(part)
        cause = (f"'{part}' is a file, not a folder" if part and os.path.isfile(part)
                 else e.strerror or str(e))
        raise ValueError(f"{what} '{path}' cannot be created: {cause}.") from None
    return path


def file_sha256(path):
    """SHA-256 hex digest of a file's bytes (read in 1 MB blocks)."""
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_open(path):
    """A binary file to write `path` through: it appears whole at `path` when the block
    ends, or not at all when it raises (a temporary file beside it, then a rename). For
    writers that stream (a multi-GB feature cache), where `atomic_write` would need all
    the bytes in memory first. Parent folders are created."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; give the file the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write(path, data):
    """Write bytes (or str) to `path` atomically, creating parent folders."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    with atomic_open(path) as f:
        f.write(data)


def read_keras(path, what="Keras model"):
    """`keras.models.load_model(path)` with errors that say what is wrong with the file.

    (Keras reports any unreadable file as "File not found".) `what` names the file's role
    in messages, e.g. "Classifier" or "Prior".
    """
    import zipfile

    import keras
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} file '{path}' does not exist.")
    if os.path.isdir(path) or not zipfile.is_zipfile(path):
        raise ValueError(f"{what} file '{path}' cannot be read as a Keras model: it is not "
                         f"a .keras archive (a zip written by model.save).")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as e:  # noqa: BLE001  (Keras raises many types for broken archives)
        raise ValueError(f"{what} file '{path}' cannot be read as a Keras model: "
                         f"{type(e).__name__}: {e}") from e


def _jsonable(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def write_json(path, obj):
    atomic_write(path, json.dumps(obj, indent=2, default=_jsonable) + "\n")


def save_npz(path, **arrays):
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write(path, buf.getvalue())


def save_keras(model, path, what="Models"):
    """Save a Keras model as `.keras` atomically (a temporary folder beside it, then rename)."""
    import shutil
    if not str(path).endswith(".keras"):
        raise ValueError(f"{what} are saved as .keras files; got '{path}'.")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmpdir = tempfile.mkdtemp(dir=folder, prefix=".tmp-")
    try:
        tmp = os.path.join(tmpdir, "model.keras")
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return path


def save_png(path, rgb):
    """Save an RGB image given in 0-255 (float or uint8) as PNG."""
    import tensorflow as tf
    arr = np.clip(np.round(np.asarray(rgb, np.float32)), 0, 255).astype(np.uint8)
    atomic_write(path, tf.io.encode_png(arr).numpy())


def environment_info():
    """Versions recorded with every output (reproducibility)."""
    import keras
    import tensorflow as tf
    import tfrestore
    return {"tfrestore": tfrestore.__version__, "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__,
            "python": sys.version.split()[0], "platform": platform.platform(),
            "argv": [portable_arg(a) for a in sys.argv]}


def portable_arg(arg):
    """A command-line word with its path made portable (`PATH`, `--flag=PATH`)."""
    if arg.startswith("--") and "=" in arg:
        flag, value = arg.split("=", 1)
        return f"{flag}={portable_record(value)}"
    return portable_path(arg)
