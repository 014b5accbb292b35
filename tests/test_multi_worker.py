"""Multi-worker training (tf.distribute.MultiWorkerMirroredStrategy) with two worker
processes on 127.0.0.1: the same weights as one worker with the same global batch, and
recovery of a job whose worker died (restart, restore the shared latest checkpoint).

Each process is a fresh interpreter (TF_CONFIG is read at strategy creation), bounded by
a timeout and killed in a `finally`."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))
from test_inverters import tiny_model  # noqa: E402

TIMEOUT = 420   # seconds per job (a TF process start alone is 10-30 s on a loaded machine)
# Weights agree to float32 summation order (the all-reduce adds two half-batch means
# where one worker takes one full-batch mean): measured here 2e-5 on filters of size 5.5
# after 6 Adam steps, so: max |a - b| <= TOL * max |b| per variable.
TOL = 1e-4
PRIOR = ["--images=astronaut,chelsea,coffee,rocket", "--input_size=64", "--patch_size=4",
         "--n_experts=8", "--n_train=2000", "--n_val=200", "--steps=6", "--batch_size=100",
         "--eval_every=1000", "--seed=3", "--checkpoint_every=2"]
PHOTOS = "astronaut,chelsea,coffee,rocket,cat,camera"


def free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    except OSError as e:
        pytest.skip(f"cannot bind a local port for the workers ({e})")
    finally:
        for s in socks:
            s.close()


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def run_single(script, args):
    proc = subprocess.run([sys.executable, os.path.join(REPO, "bin", script)] + args,
                          capture_output=True, text=True, env=_env(), timeout=TIMEOUT, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def run_workers(script, args, n=2, fault=None, wait_for=None):
    """Run `script args --strategy=multi_worker` as n workers; returns [(rc, log)].

    fault: {worker index: checkpoint number} after which that worker dies (exit 3); the
    others, stuck in a collective with a dead peer, are killed as a cluster manager would,
    once the file `wait_for` exists (the chief's checkpoint, written concurrently)."""
    ports = free_ports(n)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs, logs = [], []
    try:
        for i in range(n):
            extra = {"TF_CONFIG": json.dumps({"cluster": cluster,
                                               "task": {"type": "worker", "index": i}})}
            if fault and i in fault:
                extra["TFRESTORE_EXIT_AFTER_CHECKPOINT"] = str(fault[i])
            log = tempfile.TemporaryFile("w+")
            logs.append(log)
            procs.append(subprocess.Popen(
                [sys.executable, os.path.join(REPO, "bin", script)] + args +
                ["--strategy=multi_worker"], stdout=log, stderr=subprocess.STDOUT,
                env=_env(**extra), cwd=REPO, start_new_session=True))
        deadline = time.time() + TIMEOUT
        while time.time() < deadline and any(p.poll() is None for p in procs):
            if fault and any(procs[i].poll() is not None for i in fault):
                while wait_for and not os.path.exists(wait_for) and time.time() < deadline:
                    time.sleep(0.2)
                time.sleep(1)
                break   # the faulty worker died: the job is down
            time.sleep(0.5)
        else:
            if any(p.poll() is None for p in procs):
                raise AssertionError(f"workers still running after {TIMEOUT} s")
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    out = []
    for p, log in zip(procs, logs):
        log.seek(0)
        out.append((p.returncode, log.read()))
        log.close()
    return out


def checkpoint_values(folder):
    import tensorflow as tf
    reader = tf.train.load_checkpoint(folder)
    names = sorted(reader.get_variable_to_shape_map())
    # "elapsed" is the run's wall-clock seconds (kept for resumed timings), not model state.
    return {n: reader.get_tensor(n) for n in names
            if "save_counter" not in n and "OBJECT_GRAPH" not in n
            and not n.startswith("elapsed/")}


def assert_same_weights(a, b):
    assert sorted(a) == sorted(b)
    assert len(a) > 5
    for name in a:
        x, y = np.asarray(a[name]), np.asarray(b[name])
        if x.dtype.kind in "fiu":
            assert np.max(np.abs(x - y), initial=0) <= TOL * np.max(np.abs(y), initial=0), name


@pytest.fixture(scope="module")
def prior_single(tmp_path_factory):
    d = tmp_path_factory.mktemp("single")
    run_single("train_prior.py", PRIOR + [f"--output={d}/p.keras", f"--checkpoint_dir={d}/ck"])
    return checkpoint_values(str(d / "ck"))


def test_prior_two_workers_equal_one_worker(prior_single, tmp_path):
    res = run_workers("train_prior.py", PRIOR + [f"--output={tmp_path}/p.keras",
                                                 f"--checkpoint_dir={tmp_path}/ck",
                                                 f"--tensorboard_dir={tmp_path}/tb"])
    for rc, log in res:
        assert rc == 0, log[-3000:]
    # The chief alone writes the prior, its checkpoints and summaries.
    assert os.path.exists(tmp_path / "p.keras") and os.listdir(tmp_path / "tb")
    assert "non-chief worker" in res[1][1] and "non-chief" not in res[0][1]
    ckpts = sorted(f for f in os.listdir(tmp_path / "ck") if f.endswith(".index"))
    assert ckpts == ["ckpt-4.index", "ckpt-6.index"]
    two = checkpoint_values(str(tmp_path / "ck"))
    assert int(two["step/.ATTRIBUTES/VARIABLE_VALUE"]) == 6
    assert_same_weights(two, prior_single)
    # ... and training did move the weights (the comparison is not of two initialisations).
    import tensorflow as tf
    first = tf.train.load_checkpoint(str(tmp_path / "ck" / "ckpt-4"))
    moved = [n for n in two if n.startswith("prior/") and two[n].dtype == np.float32
             and not np.allclose(first.get_tensor(n), two[n])]
    assert moved


def test_prior_worker_killed_job_resumes_to_same_weights(prior_single, tmp_path):
    args = PRIOR + [f"--output={tmp_path}/p.keras", f"--checkpoint_dir={tmp_path}/ck"]
    res = run_workers("train_prior.py", args, fault={1: 2},
                      wait_for=str(tmp_path / "ck" / "ckpt-2.index"))
    assert res[1][0] == 3, res[1][1][-3000:]          # worker 1 died after checkpoint 2
    assert res[0][0] != 0 and not os.path.exists(tmp_path / "p.keras")
    assert tf_latest(tmp_path / "ck").endswith("ckpt-2")
    res = run_workers("train_prior.py", args)         # the job restarted, same command
    for rc, log in res:
        assert rc == 0, log[-3000:]
        assert "ckpt-2 at step 2" in log
    assert_same_weights(checkpoint_values(str(tmp_path / "ck")), prior_single)


def tf_latest(folder):
    import tensorflow as tf
    return tf.train.latest_checkpoint(str(folder)) or ""


def test_inverter_two_workers_equal_one_worker(tmp_path):
    clf = str(tmp_path / "tiny.keras")
    tiny_model().save(clf)
    args = [f"--classifier={clf}", "--preprocessing=tf", f"--images={PHOTOS}",
            "--num_val=2", "--blocks=c2,c3", "--mode=joint", "--steps=4", "--batch_size=4",
            "--log_every=2", "--val_every=0", "--checkpoint_every=2", "--seed=1"]
    run_single("train_inverter.py", args + [f"--output_dir={tmp_path}/one"])
    res = run_workers("train_inverter.py", args + [f"--output_dir={tmp_path}/two"])
    for rc, log in res:
        assert rc == 0, log[-3000:]
    assert os.path.exists(tmp_path / "two" / "inverter.keras")
    assert_same_weights(checkpoint_values(str(tmp_path / "two" / "ckpt")),
                        checkpoint_values(str(tmp_path / "one" / "ckpt")))


@pytest.mark.parametrize("value, message", [
    (None, "needs $TF_CONFIG"),
    ("{not json", "not valid JSON"),
    ('{"task": {"type": "worker", "index": 0}}', "no cluster"),
    ('{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}',
     "host:port"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "ps", "index": 0}}',
     "job types"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
     "0..1"),
])
def test_bad_tf_config_is_a_one_line_error(value, message):
    from tfrestore.distribute import tf_config
    with pytest.raises(ValueError, match=message.replace("$", r"\$")) as e:
        tf_config({} if value is None else {"TF_CONFIG": value})
    assert "\n" not in str(e.value)


def test_tf_config_parsed():
    from tfrestore.distribute import tf_config
    cluster, kind, index = tf_config({"TF_CONFIG": json.dumps(
        {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}})})
    assert cluster == {"worker": ["a:1", "b:2"]} and (kind, index) == ("worker", 1)


def test_no_tpu_is_a_one_line_error(monkeypatch):
    from tfrestore.distribute import make_strategy
    monkeypatch.delenv("TPU_NAME", raising=False)
    with pytest.raises(ValueError, match=r"--strategy=tpu: no TPU found .*--tpu") as e:
        make_strategy("tpu")
    assert "\n" not in str(e.value)


def test_non_chief_checks_settings_without_writing(tmp_path):
    from tfrestore.runstate import SettingsMismatchError, check_settings
    folder = str(tmp_path / "ck")
    assert check_settings(folder, {"seed": 1}, write=False) == "new"
    assert not os.path.exists(folder)                       # the chief records, not others
    check_settings(folder, {"seed": 1})
    open(os.path.join(folder, "ckpt-1.index"), "w").close()
    assert check_settings(folder, {"seed": 1}, fresh=True, write=False) == "fresh"
    assert os.path.exists(os.path.join(folder, "ckpt-1.index"))   # only the chief deletes
    with pytest.raises(SettingsMismatchError, match="seed"):
        check_settings(folder, {"seed": 2}, write=False)


def test_binaries_bad_cluster_or_shard_exit_2(tmp_path):
    from binary_runner import BinaryRunner
    env = {"TF_CONFIG": ""}
    with BinaryRunner() as run:
        rc, out, err = run("bin/train_prior.py", PRIOR + [f"--output={tmp_path}/p.keras",
                                                          "--strategy=multi_worker"], env=env)
        assert rc == 2 and err.strip().splitlines()[-1].startswith(
            "error: --strategy=multi_worker needs $TF_CONFIG"), err[-2000:]
        rc, out, err = run("bin/compare.py", ["--config=results/compare/mobilenet_v2_config.json",
                                              "--images=chelsea", f"--output={tmp_path}/c",
                                              "--shard=2/2"])
        assert rc == 2 and err.strip().splitlines()[-1].startswith("error: --shard=2/2"), err
