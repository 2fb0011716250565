"""PySpark's Python worker daemon, without a traceback when the JVM stops reading early.

A task that ends before its Python worker has written everything (``first()``, ``limit``,
``take``, a stage cancelled after a failure elsewhere) closes the task's socket; the
worker's last flush then fails with ``BrokenPipeError`` and PySpark's daemon prints the
traceback to the executor's stderr, which in local mode is the job's console: a traceback
on a run that succeeded. On Unix domain sockets (:data:`marketlab.spark.SESSION_CONF`) the
flush fails at once rather than into a socket buffer, so it is printed more often. Here the
worker exits exactly as PySpark's daemon makes it exit after that traceback (status 1, and
Spark's ``killWorkerOnFlushFailure`` behaviour unchanged), only without the print. A worker
that fails in any other way still prints its traceback.

Selected by ``spark.python.daemon.module`` in :data:`marketlab.spark.SESSION_CONF`; runs as
``python -m marketlab.pyspark_daemon`` in every executor, so marketlab must be importable
there (the venv in local mode, the wheel on a cluster, the image on Kubernetes).
"""

from __future__ import annotations

import os

from pyspark import daemon

_worker = daemon.worker


def worker(sock, authenticated: bool) -> int:
    """PySpark's ``daemon.worker``, leaving quietly when the JVM closed the socket first."""
    try:
        return _worker(sock, authenticated)
    except (BrokenPipeError, ConnectionResetError):
        os._exit(1)


daemon.worker = worker

if __name__ == "__main__":
    daemon.manager()
