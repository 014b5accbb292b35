"""tfrestore.io: atomic writers leave the old file or the whole new one, never a part;
records carry no machine's absolute paths."""
import os

import numpy as np
import pytest

from tfrestore.io import atomic_open, atomic_write, portable_path, portable_record


def test_atomic_open_streams_a_whole_file(tmp_path):
    path = tmp_path / "sub" / "cache.npz"
    with atomic_open(str(path)) as f:
        np.savez(f, a=np.arange(5))
    with np.load(path) as z:
        np.testing.assert_array_equal(z["a"], np.arange(5))
    assert os.listdir(path.parent) == ["cache.npz"]   # no temporary file left


def test_atomic_open_interrupted_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "cache.npz"
    atomic_write(str(path), b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(str(path)) as f:
            f.write(b"half of the new")
            raise KeyboardInterrupt
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["cache.npz"]


def test_portable_record(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    elsewhere = os.path.join(os.path.dirname(str(tmp_path)), "data", "a.png")
    inside = str(tmp_path / "imgs" / "b.png")
    assert portable_path(elsewhere) == "a.png"
    assert portable_path(inside) == os.path.join("imgs", "b.png")
    assert portable_record(f"{elsewhere},{inside},chelsea") == "a.png,imgs/b.png,chelsea"
    assert portable_record([elsewhere, "rel/c.png"]) == ["a.png", "rel/c.png"]
    assert portable_record(None) is None and portable_record(3) == 3


@pytest.mark.parametrize("value,expected,warns", [("2", "2 2", False), ("x", "default", True)])
def test_thread_setting_sizes_tensorflow_pools(value, expected, warns):
    """TFRESTORE_THREADS=N sets both pools at import; a bad value is ignored with a warning
    naming the fix (importing a library never fails on it)."""
    import subprocess
    import sys
    code = ("import warnings; warnings.simplefilter('always')\n"
            "import tfrestore, tensorflow as tf\n"
            "t = tf.config.threading\n"
            "a, b = t.get_intra_op_parallelism_threads(), t.get_inter_op_parallelism_threads()\n"
            "print('default' if a == b == 0 else f'{a} {b}')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, TFRESTORE_THREADS=value), timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == expected
    assert ("TFRESTORE_THREADS='x' ignored: set a whole number" in res.stderr) == warns
