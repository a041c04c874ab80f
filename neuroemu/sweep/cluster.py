"""Dask clusters for sweeps and data-parallel evaluation: a ``LocalCluster`` sized to the
machine by default, or the scheduler of a running cluster by address
(``tcp://HOST:PORT``), so the same work goes wide on many machines.

Local workers are processes of one thread each (the engines run one numba thread per trial
unless told otherwise; BLAS stays at one thread, as the command line sets it), and each
worker takes one task at a time (``worker-saturation`` 1): a worker that dies (killed, out of
memory) then takes only its own task down, which Dask runs again on another worker up to
``distributed.scheduler.allowed-failures`` times (3 by default) before giving up on it
(``KilledWorker``).  A cluster given by address keeps its own settings.
"""

from __future__ import annotations

import contextlib
import logging
import os

from ..errors import OptionError

__all__ = ["connect", "check_where", "local_workers", "worker_count"]


def local_workers() -> int:
    """Worker processes of a local cluster by default: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:      # not on Linux
        return max(1, os.cpu_count() or 1)


def _import():
    try:
        import distributed
    except ImportError:
        raise OptionError("Dask distributed is not installed: pip install 'neuroemu[sweep]' "
                          "(or pip install 'dask[distributed]')") from None
    return distributed


@contextlib.contextmanager
def quiet():
    """Dask's own log lines (a worker that died, a closing connection) stay out of the
    output while the block runs: what matters of them is recorded with the trial."""
    loggers = [logging.getLogger(n) for n in ("distributed", "tornado", "asyncio")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def check_where(workers: int | None = None, scheduler: str | None = None) -> None:
    """Where work may run: a local cluster of ``workers`` processes, or the scheduler at an
    address ``tcp://HOST:PORT`` -- not both (an OptionError names the option)."""
    if scheduler is not None and workers is not None:
        raise OptionError(f"--workers {workers}: the cluster at --scheduler {scheduler} has its "
                          f"own workers (give one of the two)")
    if scheduler is not None and (
            not str(scheduler).startswith(("tcp://", "tls://", "ucx://", "inproc://"))
            or ":" not in str(scheduler).split("://", 1)[1]):
        raise OptionError(f"--scheduler: must be an address like tcp://HOST:PORT "
                          f"(got {scheduler!r})")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise OptionError(f"--workers: must be a positive integer (got {workers!r})")


@contextlib.contextmanager
def connect(workers: int | None = None, scheduler: str | None = None, client=None):
    """A ``distributed.Client``: ``client`` itself if given, else one on the scheduler at
    ``scheduler``, else on a new local cluster of ``workers`` processes (default: one per
    core), closed when the block ends."""
    if client is not None:
        yield client
        return
    check_where(workers, scheduler)
    distributed = _import()
    if scheduler is not None:
        try:
            c = distributed.Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise OptionError(f"--scheduler {scheduler}: no Dask scheduler answers there "
                              f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") \
                from None
        try:
            yield c
        finally:
            c.close()
        return
    n = local_workers() if workers is None else int(workers)
    import dask
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                           dashboard_address=":0",
                                           silence_logs=logging.CRITICAL)
    try:
        c = distributed.Client(cluster)
        try:
            yield c
        finally:
            c.close()
    finally:
        cluster.close()


def worker_count(client) -> int:
    """Threads of the cluster's workers (at least 1): the tasks it runs at once."""
    try:
        return max(1, sum(client.nthreads().values()))
    except Exception:   # noqa: BLE001 -- a cluster that cannot say: one at a time
        return 1
