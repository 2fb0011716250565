"""Launch a training task on N Spark tasks: two backends, shared by every deep model.

A task is any picklable :class:`~marketlab.training.worker.TrainTask` (the forecast LSTM's
``TrainTask``, the sequence models' specs): the launcher starts the workers, hands each
its :class:`~marketlab.training.worker.Distribution`, and calls ``task.train(dist, device)``.

``horovod``
    ``horovod.spark.run`` starts one Horovod process per Spark task; gradients are averaged
    by ``hvd.DistributedOptimizer`` (gloo ring all-reduce on CPU; NCCL on GPU when Horovod
    is built with ``HOROVOD_GPU_OPERATIONS=NCCL``), rank 0's initial weights are broadcast.
``tf-distribute``
    A Spark barrier stage of N tasks; the tasks exchange ``host:port`` through the barrier
    (``allGather``), each writes ``TF_CONFIG`` and trains under
    ``MultiWorkerMirroredStrategy`` (ring all-reduce on CPU, NCCL on GPU) in a fresh child
    process. The child is needed because TensorFlow's collective runtime can be set up
    only once per process and Spark reuses its Python workers; it also hands GPU memory
    back when training ends.

Both return one :class:`~marketlab.training.worker.WorkerResult` per rank. ``run_many``
trains several models one after the other: Horovod in one launch (its start-up, ~12 s
with TensorFlow's import on 2 cores, is paid once), tf.distribute in one launch each
(its collective runtime cannot be set up twice in one process).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
from typing import Protocol, Sequence

from pyspark.sql import SparkSession

from marketlab.training.worker import Distribution, TrainTask, WorkerResult, pin_gpu, set_threads

BACKENDS = ("horovod", "tf-distribute")


class LaunchError(RuntimeError):
    """Distributed training could not start or a worker failed (message says which)."""


class Launcher(Protocol):
    """A way to run the training function on ``num_workers`` Spark tasks."""

    name: str

    def run(self, spark: SparkSession, spec: TrainTask, num_workers: int) -> list[WorkerResult]:
        """Train; one result per rank, sorted by rank."""
        ...

    def run_many(self, spark: SparkSession, specs: Sequence[TrainTask], num_workers: int) -> list[list[WorkerResult]]:
        """Train one model per spec, in order; per spec one result per rank, sorted by rank."""
        ...


def get_launcher(backend: str, start_timeout_s: int = 300) -> Launcher:
    """The launcher for a backend name of conf (``horovod`` or ``tf-distribute``)."""
    if backend == "horovod":
        return HorovodLauncher(start_timeout_s)
    if backend == "tf-distribute":
        return TfDistributeLauncher(start_timeout_s)
    raise ValueError(f"unknown training backend '{backend}'; choose one of {BACKENDS}")


def task_slots(spark: SparkSession) -> int:
    """Tasks the cluster can run at once (not ``defaultParallelism``, which is only a default)."""
    sc = spark.sparkContext
    try:
        jsc = sc._jsc.sc()
        return int(jsc.maxNumConcurrentTasks(jsc.resourceProfileManager().defaultResourceProfile()))
    except Exception:  # pragma: no cover - JVM API differs; fall back to the conf hint
        return sc.defaultParallelism


def _check_slots(spark: SparkSession, num_workers: int) -> None:
    # A barrier stage (and Horovod's tasks) larger than the free slots would wait, not fail.
    slots = task_slots(spark)
    if num_workers > slots:
        raise LaunchError(f"{num_workers} training workers need as many concurrent Spark task slots; the cluster has {slots}")


# --- horovod -------------------------------------------------------------------------


class HorovodDistribution(Distribution):
    """Horovod: wrapped optimizer, broadcast of rank 0's weights, averaged metrics."""

    name = "horovod"

    def __init__(self, hvd) -> None:
        self.hvd = hvd
        self.rank, self.size = hvd.rank(), hvd.size()

    def optimizer(self, opt):
        return self.hvd.DistributedOptimizer(opt)

    def callbacks(self) -> list:
        return [self.hvd.callbacks.BroadcastGlobalVariablesCallback(0), self.hvd.callbacks.MetricAverageCallback()]


def horovod_worker(specs: Sequence[TrainTask]) -> list[WorkerResult]:
    """Entry point of one Horovod process: train one model per spec, in order."""
    import horovod.tensorflow.keras as hvd
    import tensorflow as tf

    set_threads(specs[0].threads)
    hvd.init()
    device = pin_gpu(hvd.local_rank(), specs[0].use_gpu)
    out = []
    for spec in specs:
        # A fresh Keras state per model: layer names, and with the task's reseeding the
        # same initial weights and shuffles as a model trained in a process of its own.
        tf.keras.backend.clear_session()
        out.append(spec.train(HorovodDistribution(hvd), device))
    return out


def _gloo_signals_from_main_thread_only() -> None:
    """Let ``horovod.spark.run`` start from a thread other than the main one.

    Horovod's gloo launcher installs SIGINT/SIGTERM handlers for its shutdown event, which
    Python allows only in the main thread, and the pipeline runs stages in threads. There
    the event is left to Horovod itself: an interrupt reaches the main thread, which cancels
    the Spark jobs (and so the training tasks). Horovod 0.28.1 is its last release.
    """
    from horovod.runner import gloo_run

    original = gloo_run.register_shutdown_event
    if getattr(original, "marketlab_any_thread", False):
        return

    def register_shutdown_event():
        if threading.current_thread() is threading.main_thread():
            return original()
        return threading.Event()

    register_shutdown_event.marketlab_any_thread = True
    gloo_run.register_shutdown_event = register_shutdown_event


class HorovodLauncher:
    """``horovod.spark.run`` (gloo controller; no MPI needed on the cluster)."""

    name = "horovod"

    def __init__(self, start_timeout_s: int = 300) -> None:
        self.start_timeout_s = start_timeout_s

    def run(self, spark: SparkSession, spec: TrainTask, num_workers: int) -> list[WorkerResult]:
        return self.run_many(spark, [spec], num_workers)[0]

    def run_many(self, spark: SparkSession, specs: Sequence[TrainTask], num_workers: int) -> list[list[WorkerResult]]:
        try:
            import horovod.spark
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise LaunchError(f"backend 'horovod' needs Horovod (run `make install`): {exc}") from None
        if len({(s.threads, s.use_gpu) for s in specs}) > 1:
            raise ValueError("models trained in one launch share the process: same threads and use_gpu")
        _check_slots(spark, num_workers)
        _gloo_signals_from_main_thread_only()
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            per_rank = horovod.spark.run(horovod_worker, args=(list(specs),), num_proc=num_workers, use_gloo=True,
                                         start_timeout=self.start_timeout_s, env=env, verbose=0)
        except Exception as exc:
            raise LaunchError(f"horovod training failed: {exc}") from exc
        return [sorted(results, key=lambda r: r.rank) for results in zip(*per_rank)]


# --- tf.distribute -----------------------------------------------------------------------


class MirroredDistribution(Distribution):
    """MultiWorkerMirroredStrategy: variables mirrored, gradients all-reduced in ``fit``."""

    name = "tf-distribute"

    def __init__(self, strategy, rank: int) -> None:
        self.strategy = strategy
        self.rank, self.size = rank, strategy.num_replicas_in_sync

    def scope(self):
        return self.strategy.scope()

    def dataset(self, make):
        import tensorflow as tf

        def per_worker(_ctx):
            ds = make()
            # The data is already this worker's shard: no auto-sharding on top of it.
            opts = tf.data.Options()
            opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
            return ds.with_options(opts)

        return self.strategy.distribute_datasets_from_function(per_worker)


def tf_distribute_child(spec: TrainTask, rank: int) -> WorkerResult:
    """Body of the child process of one barrier task (``TF_CONFIG`` already set)."""
    import tensorflow as tf

    set_threads(spec.threads)
    device = pin_gpu(0, spec.use_gpu)  # the task's GPU is the only one visible (CUDA_VISIBLE_DEVICES)
    impl = (tf.distribute.experimental.CommunicationImplementation.NCCL if device.startswith("gpu")
            else tf.distribute.experimental.CommunicationImplementation.RING)
    strategy = tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(implementation=impl))
    return spec.train(MirroredDistribution(strategy, rank), device)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _barrier_task(spec: TrainTask, timeout_s: int):
    def run(_):
        import cloudpickle
        from pyspark import BarrierTaskContext

        ctx = BarrierTaskContext.get()
        rank = ctx.partitionId()
        host = ctx.getTaskInfos()[rank].address.split(":")[0]
        if host in ("localhost", ""):
            host = "127.0.0.1"
        peers = ctx.allGather(f"{host}:{_free_port(host)}")
        env = dict(os.environ)
        env["TF_CONFIG"] = json.dumps({"cluster": {"worker": peers}, "task": {"type": "worker", "index": rank}})
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        gpus = ctx.resources().get("gpu")
        if gpus is not None and gpus.addresses:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus.addresses)
        with tempfile.TemporaryDirectory(prefix="marketlab-tfd-") as tmp:
            args_path, out_path = os.path.join(tmp, "in.pkl"), os.path.join(tmp, "out.pkl")
            with open(args_path, "wb") as fh:
                cloudpickle.dump((spec, rank), fh)
            proc = subprocess.run([sys.executable, "-m", "marketlab.training.launch", args_path, out_path], env=env,
                                  capture_output=True, text=True, timeout=timeout_s)
            if proc.returncode != 0:
                raise RuntimeError(f"tf-distribute worker {rank} exited {proc.returncode}: {proc.stderr[-3000:]}")
            with open(out_path, "rb") as fh:
                result = cloudpickle.load(fh)
        yield result

    return run


class TfDistributeLauncher:
    """MultiWorkerMirroredStrategy in a Spark barrier stage."""

    name = "tf-distribute"

    def __init__(self, start_timeout_s: int = 300, train_timeout_s: int = 6 * 3600) -> None:
        self.start_timeout_s = start_timeout_s
        self.train_timeout_s = train_timeout_s

    def run(self, spark: SparkSession, spec: TrainTask, num_workers: int) -> list[WorkerResult]:
        _check_slots(spark, num_workers)
        sc = spark.sparkContext
        rdd = sc.parallelize(range(num_workers), num_workers).barrier().mapPartitions(_barrier_task(spec, self.train_timeout_s))
        try:
            results = rdd.collect()
        except Exception as exc:
            msg = str(exc)
            cut = msg.find("RuntimeError: tf-distribute worker")
            raise LaunchError(f"tf-distribute training failed: {msg[cut:cut + 3000] if cut >= 0 else msg[-3000:]}") from exc
        return sorted(results, key=lambda r: r.rank)

    def run_many(self, spark: SparkSession, specs: Sequence[TrainTask], num_workers: int) -> list[list[WorkerResult]]:
        return [self.run(spark, spec, num_workers) for spec in specs]


def _child_main(args_path: str, out_path: str) -> None:
    import cloudpickle

    with open(args_path, "rb") as fh:
        spec, rank = cloudpickle.load(fh)
    result = tf_distribute_child(spec, rank)
    with open(out_path, "wb") as fh:
        cloudpickle.dump(result, fh)


if __name__ == "__main__":
    _child_main(sys.argv[1], sys.argv[2])
