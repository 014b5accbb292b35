"""tf.distribute strategies by name, and what a multi-worker job writes where.

    strategy = make_strategy("multi_worker")          # reads $TF_CONFIG
    ds = distribute_dataset(strategy, ds)              # auto-shard by DATA, global batch
    ckpts = SharedCheckpoints(checkpoint, "ckpt/", strategy)
    ckpts.restore()                                    # every worker: the shared latest
    ckpts.save(step)                                   # chief: ckpt/; others: a temp folder
    writer = summary_writer("tb/", strategy)           # non-chief: a temp folder

Wiring a training binary (as bin/train_prior.py, bin/train_inverter.py do):
`cli.define_strategy_flags()` at import, `strategy = cli.strategy_from_flags()` first in
main (before any TensorFlow op), variables and optimizer under `strategy.scope()`, steps via
`strategy.run`, batches from `distribute_dataset` (global batch, order a function of seed
and step), checkpoints with `SharedCheckpoints` (or `engine.Checkpoint(strategy=...)`),
summaries into `log_dir(path, strategy)`, `runstate.check_settings(write=is_chief(...))`,
and final outputs only `if is_chief(strategy)`.

The multi-worker rules are TensorFlow's (MultiWorkerMirroredStrategy tutorial): every
worker runs the same program and joins every collective, including checkpoint saving, so
every worker saves; only the chief's checkpoints and summaries go to the shared folder, the
others write to a private temporary folder and delete it. After a worker dies the job is
restarted (all workers) and each restores the latest checkpoint of the shared folder.
"""
import atexit
import json
import os
import shutil
import tempfile

__all__ = ["STRATEGIES", "make_strategy", "tf_config", "is_chief", "distribute_dataset",
           "SharedCheckpoints", "barrier", "log_dir", "summary_writer", "worker_info"]

FAULT_ENV = "TFRESTORE_EXIT_AFTER_CHECKPOINT"
STRATEGIES = ("default", "one_device", "mirrored", "multi_worker", "tpu")


def tf_config(env=None):
    """The parsed and checked $TF_CONFIG: (cluster dict, task type, task index).

    Raises ValueError (one line, naming the fix) when it is missing or malformed."""
    env = os.environ if env is None else env
    raw = env.get("TF_CONFIG")
    shape = ('e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
             '"task": {"type": "worker", "index": 0}}\'')
    if not raw:
        raise ValueError(f"--strategy=multi_worker needs $TF_CONFIG naming the cluster and "
                         f"this worker's task; {shape}")
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"$TF_CONFIG is not valid JSON ({e}); {shape}") from None
    cluster = cfg.get("cluster") if isinstance(cfg, dict) else None
    task = cfg.get("task") if isinstance(cfg, dict) else None
    if not isinstance(cluster, dict) or not cluster.get("worker") and not cluster.get("chief"):
        raise ValueError(f"$TF_CONFIG has no cluster with a 'worker' (or 'chief') address "
                         f"list; {shape}")
    for kind, hosts in cluster.items():
        if not isinstance(hosts, list) or not all(isinstance(h, str) and ":" in h
                                                  for h in hosts):
            raise ValueError(f"$TF_CONFIG cluster '{kind}' must be a list of 'host:port' "
                             f"strings, got {hosts!r}; {shape}")
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise ValueError(f"$TF_CONFIG task {task!r} must name one of the cluster's job types "
                         f"{sorted(cluster)}; {shape}")
    index = task.get("index")
    if not isinstance(index, int) or not 0 <= index < len(cluster[task["type"]]):
        raise ValueError(f"$TF_CONFIG task index {index!r} is not in 0.."
                         f"{len(cluster[task['type']]) - 1} for '{task['type']}'")
    return cluster, task["type"], index


def _split_cpu(cpu_replicas):
    import tensorflow as tf
    if cpu_replicas < 0:
        raise ValueError(f"--cpu_replicas={cpu_replicas}: must be >= 0.")
    if cpu_replicas:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
        return [d.name for d in tf.config.list_logical_devices("CPU")]
    return None


def make_strategy(name, cpu_replicas=0, tpu=None):
    """The strategy called `name` (one of STRATEGIES; default/one_device: None, the default).

    Must run before TensorFlow initialises its devices (any op does that).
      mirrored: data-parallel over this machine's GPUs (or `cpu_replicas` logical CPUs).
      multi_worker: MultiWorkerMirroredStrategy over the cluster of $TF_CONFIG (each worker
        runs the same command with its own task index; its local devices are replicas).
      tpu: TPUStrategy over the TPU `tpu` (name or grpc:// address; None: the TPU of this
        Cloud TPU VM / $TPU_NAME).
    """
    import tensorflow as tf
    if name not in STRATEGIES:
        raise ValueError(f"--strategy={name}: expected one of {', '.join(STRATEGIES)}.")
    if name == "multi_worker":
        tf_config()   # a clear error before TensorFlow's own (or a silent one-worker job)
        if cpu_replicas:
            raise ValueError("--cpu_replicas splits one machine's CPU for --strategy=mirrored;"
                             " with --strategy=multi_worker each worker is one replica on CPU"
                             " (its GPUs on a GPU host). Drop --cpu_replicas.")
        return tf.distribute.MultiWorkerMirroredStrategy()
    devices = _split_cpu(cpu_replicas)
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except Exception as e:  # noqa: BLE001 - TensorFlow raises several types for "no TPU"
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ValueError(f"--strategy=tpu: no TPU found ({first}); run on a Cloud TPU VM "
                             f"or set $TPU_NAME / --tpu to the TPU's name or address.") from None
        return tf.distribute.TPUStrategy(resolver)
    return None


def worker_info(strategy=None):
    """(task type, task index) of this process (None, None outside a multi-worker job)."""
    resolver = getattr(strategy, "cluster_resolver", None) if strategy is not None else None
    if resolver is None or not getattr(resolver, "task_type", None):
        return None, None
    return resolver.task_type, resolver.task_id


def is_chief(strategy=None):
    """True unless this process is a non-chief worker of a multi-worker job (TF's rule: the
    'chief' task, or worker 0 when the cluster has no chief)."""
    import tensorflow as tf
    if strategy is None or not isinstance(strategy,
                                          tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = worker_info(strategy)
    if task_type is None:
        return True
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    if "chief" in cluster:
        return task_type == "chief"
    return task_type == "worker" and task_id == 0


def distribute_dataset(strategy, dataset):
    """`dataset` (batches of the global batch size) split over the replicas of `strategy`;
    over workers by DATA (each worker reads the same order and keeps its share), so a
    k-worker job sees exactly the global batches of a one-worker job."""
    import tensorflow as tf
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = \
        tf.data.experimental.AutoShardPolicy.DATA
    options.experimental_deterministic = True
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def barrier(strategy=None):
    """Return when every worker of a multi-worker job got here (an all-reduce of ones)."""
    import tensorflow as tf
    if strategy is None or not isinstance(strategy,
                                          tf.distribute.MultiWorkerMirroredStrategy):
        return
    @tf.function
    def all_reduce():
        ones = strategy.run(lambda: tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, tf.ones([])))
        return strategy.reduce(tf.distribute.ReduceOp.MEAN, ones, axis=None)
    total = all_reduce()
    if int(total.numpy()) != strategy.num_replicas_in_sync:
        raise RuntimeError(f"barrier: {total} of {strategy.num_replicas_in_sync} replicas")


def _write_dir(path, strategy):
    """`path` on the chief; a fresh private temporary folder on the other workers."""
    if is_chief(strategy):
        return path
    task_type, task_id = worker_info(strategy)
    return tempfile.mkdtemp(prefix=f"tfrestore_{task_type}{task_id}_")


class SharedCheckpoints:
    """tf.train.CheckpointManager for a job of one or many workers.

    Every worker restores the latest checkpoint of the shared `directory` and saves at
    the same steps (saving joins collectives); the chief's saves land in `directory`, the
    others' in a temporary folder deleted right after.
    """

    def __init__(self, checkpoint, directory, strategy=None, max_to_keep=2):
        import tensorflow as tf
        self.checkpoint, self.directory, self.strategy = checkpoint, directory, strategy
        self.chief = is_chief(strategy)
        self._max = max_to_keep
        if self.chief:
            self._manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep)

    @property
    def latest_checkpoint(self):
        import tensorflow as tf
        return tf.train.latest_checkpoint(self.directory)

    def restore(self):
        """Restore the shared latest checkpoint (if any); returns its path or None.

        Multi-worker: first waits for every worker (the chief may still be deleting an old
        run for --fresh), so all restore the same checkpoint."""
        barrier(self.strategy)
        path = self.latest_checkpoint
        if path:
            self.checkpoint.restore(path).assert_existing_objects_matched()
        return path

    def save(self, checkpoint_number):
        import tensorflow as tf
        if self.chief:
            path = self._manager.save(checkpoint_number=checkpoint_number)
        else:
            folder, path = _write_dir(self.directory, self.strategy), None
            try:
                tf.train.CheckpointManager(self.checkpoint, folder, 1).save(
                    checkpoint_number=checkpoint_number)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        # Fault injection for the tests of recovery: this process dies (no cleanup, as on
        # a lost machine) right after saving checkpoint N.
        if os.environ.get(FAULT_ENV) == str(checkpoint_number):
            os._exit(3)
        return path


def log_dir(path, strategy=None):
    """Where this process writes summaries meant for `path`: `path` on the chief, a private
    temporary folder (deleted when the process exits) on the other workers."""
    if not path or is_chief(strategy):
        return path
    folder = _write_dir(path, strategy)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def summary_writer(path, strategy=None):
    """tf.summary file writer into `log_dir(path, strategy)` (None without a path)."""
    import tensorflow as tf
    return tf.summary.create_file_writer(log_dir(path, strategy)) if path else None
