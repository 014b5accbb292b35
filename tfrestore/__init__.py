"""tfrestore: reconstruct images from what a CNN classifier computes inside.

Importing the package registers its Keras layers (preprocessing, AlexNet's LRN,
patch priors, inverting modules) so that `keras.models.load_model` restores them.
"""
import os as _os
import re as _re

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# What TensorFlow's C++ libraries print on every CPU-only import. TF_CPP_MIN_LOG_LEVEL
# does not reach it: the libraries log through absl from static initialisers, before
# absl::InitializeLog() and before any Python code can set a threshold.
_TF_NOISE = _re.compile(r"All log messages before absl::InitializeLog|cudart_stub\.cc|"
                        r"cpu_feature_guard\.cc|^To enable the following instructions|"
                        r"cuda_platform\.cc|failed call to cuInit|Unable to register cu|"
                        r"oneDNN custom operations are on")


def _import_tensorflow_quietly():
    """Import TensorFlow with stderr (fd 2) captured; replay every line except _TF_NOISE.

    Listing the GPUs inside the capture also moves the cuInit error of driverless
    machines here; it does not initialise devices (logical CPU devices can still be set).
    TFRESTORE_TF_NOISE=1 keeps TensorFlow's output untouched.
    """
    import sys
    if "tensorflow" in sys.modules or _os.environ.get("TFRESTORE_TF_NOISE") == "1":
        import tensorflow  # noqa: F401
        return
    import tempfile
    try:
        sys.stderr.flush()
        saved = _os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters)
        import tensorflow  # noqa: F401
        return
    with tempfile.TemporaryFile() as captured:
        _os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf
            tf.config.list_physical_devices("GPU")
        finally:
            sys.stderr.flush()
            _os.dup2(saved, 2)
            _os.close(saved)
            captured.seek(0)
            lines = captured.read().decode("utf-8", "replace").splitlines(keepends=True)
            kept = "".join(l for l in lines if not _TF_NOISE.search(l))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def _apply_thread_setting():
    """TFRESTORE_THREADS=N (N > 0) sizes TensorFlow's intra- and inter-op pools to N threads.

    TensorFlow sizes both for the whole machine; several long jobs sharing the cores then
    run many more busy threads than there are cores (bench/bench_threads.py measures what it
    costs). It must act before TensorFlow's runtime starts, hence here, at import.
    """
    import warnings
    value = _os.environ.get("TFRESTORE_THREADS", "").strip()
    if value in ("", "0"):
        return
    if not value.isdigit():   # a warning, not an error: importing a library should not fail
        warnings.warn(f"TFRESTORE_THREADS={value!r} ignored: set a whole number of threads "
                      f"(0 or unset: TensorFlow's default).", stacklevel=2)
        return
    import tensorflow as tf
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(value))
        tf.config.threading.set_inter_op_parallelism_threads(int(value))
    except RuntimeError as e:   # TensorFlow ran ops before tfrestore was imported
        warnings.warn(f"TFRESTORE_THREADS={value} not applied: {e} (import tfrestore before "
                      f"running TensorFlow ops).", stacklevel=2)


_import_tensorflow_quietly()
_apply_thread_setting()

from tfrestore import classifiers  # noqa: E402,F401
from tfrestore import inverters  # noqa: E402,F401
from tfrestore import priors  # noqa: E402,F401

__version__ = "0.1.0"
