"""Data-parallel evaluation: :func:`neuroemu.learn.evaluate.evaluate` with the images split
across Dask workers (``neuroemu eval ... --workers N`` or ``--scheduler tcp://HOST:PORT``).

The result is the serial one exactly -- the same predictions, the same counters, the same
:class:`~neuroemu.learn.evaluate.EvalResult` -- because nothing in a sample's run depends on
the others: each chunk of images runs as :func:`~neuroemu.learn.evaluate.classify` runs them
(sessions of ``batch`` rows, ``warmup`` steps, then ``steps`` read out by
:func:`~neuroemu.learn.evaluate.readout`), each sample keeps its index in the whole set as its
sample id (the stochastic encoders' streams depend on it, not on the chunking), and the
counters are exact integers, summed in the same order.  A worker that dies takes its chunk
with it; Dask runs the chunk again elsewhere, with the same result.

Usage::

    from neuroemu.sweep.parallel_eval import evaluate_distributed
    res = evaluate_distributed(net, images, labels, workers=4)        # a local cluster
    res = evaluate_distributed(net, images, labels, scheduler="tcp://10.0.0.1:8786")
"""

from __future__ import annotations

import math
import sys

import numpy as np

from ..engines import as_compiled, check_input
from ..engines import session as open_session
from ..errors import EngineError
from ..learn.evaluate import (Classified, EvalResult, check_labels, default_steps, readout,
                              score, window_start)
from .cluster import check_where, connect, quiet, worker_count
from .trial import pack_images, unpack_images

__all__ = ["evaluate_distributed", "classify_chunk", "chunks"]


def _positive(name: str, value, lo: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        what = "a positive integer" if lo == 1 else f"an integer >= {lo}"
        raise EngineError(f"{name}: must be {what} (got {value!r})")
    return int(value)


def classify_chunk(cn, x, first: int, steps: int, batch: int, threads: int,
                   seed: int, warmup: int) -> tuple[np.ndarray, dict]:
    """The rows of ``x``, samples ``first, first + 1, ...`` of the whole set, classified as
    :func:`~neuroemu.learn.evaluate.classify` does: (predictions, per-sample counters).
    ``x``: the images, or :func:`neuroemu.sweep.trial.pack_images` of them."""
    if isinstance(x, dict):
        x = unpack_images(x)
    n = len(x)
    preds = np.empty(n, dtype=np.int64)
    counters: dict[str, np.ndarray] = {}
    sess = None
    for i in range(0, n, batch):
        xb = x[i:i + batch]
        ids = np.arange(first + i, first + i + len(xb))
        if sess is not None and sess.batch == len(xb):
            sess.reset(xb, ids)
        else:
            sess = open_session(cn, xb, seed=seed, threads=threads, sample_ids=ids)
        start = None
        if warmup:
            sess.run(warmup)
            start = window_start(sess)
        sess.run(steps)
        preds[i:i + len(xb)] = readout(sess, start).argmax(axis=1)
        for k, v in sess.counters().items():
            if k not in counters:
                counters[k] = np.zeros((n,) + v.shape[1:], dtype=v.dtype)
            counters[k][i:i + len(xb)] = v
    return preds, counters


def chunks(n: int, slots: int, batch: int, chunk: int | None = None) -> list[tuple[int, int]]:
    """(first, stop) of each chunk: ``chunk`` images each (default: about four chunks per
    worker thread, a whole number of batches)."""
    if chunk is None:
        chunk = max(batch, math.ceil(n / (4 * max(slots, 1)) / batch) * batch)
    return [(i, min(i + chunk, n)) for i in range(0, n, chunk)]


def evaluate_distributed(net, images, labels, steps: int | None = None, *, batch: int = 100,
                         threads: int = 1, seed: int | None = None, warmup: int = 0,
                         workers: int | None = None, scheduler: str | None = None,
                         client=None, chunk: int | None = None,
                         progress: bool = False) -> EvalResult:
    """:func:`neuroemu.learn.evaluate.evaluate` (same arguments, same result) with the images
    in chunks across Dask workers: a local cluster of ``workers`` processes (default one
    per core), the cluster at ``scheduler``, or an open ``client``.  ``chunk``: images per
    task (default: about four tasks per worker thread).  ``progress``: a tqdm bar on stderr
    (only when it is a terminal)."""
    if client is None:
        check_where(workers, scheduler)
    cn = as_compiled(net)
    x = check_input(images, cn.n_in, "images")
    y = check_labels(labels, len(x))
    steps = default_steps(cn) if steps is None else _positive("steps", steps)
    batch, threads = _positive("batch", batch), _positive("threads", threads)
    warmup = _positive("warmup", warmup, 0)
    if chunk is not None:
        chunk = _positive("chunk", chunk)
    seed = cn.netlist.seed if seed is None else int(seed)
    n = len(x)
    if n == 0:
        raise EngineError("images: none to classify (got 0 rows)")
    from tqdm import tqdm
    preds = np.empty(n, dtype=np.int64)
    counters: dict[str, np.ndarray] = {}
    with quiet(), connect(workers, scheduler, client) as c:
        from distributed import as_completed
        cn_f = c.scatter(cn, broadcast=True, hash=False)
        futs = {c.submit(classify_chunk, cn_f, pack_images(x[a:b]), a, steps, batch, threads,
                         seed, warmup, pure=False): (a, b)
                for a, b in chunks(n, worker_count(c), batch, chunk)}
        with tqdm(total=n, desc="classifying", unit="sample", leave=False,
                  disable=not (progress and sys.stderr.isatty())) as bar:
            for fut in as_completed(futs):
                a, b = futs[fut]
                p, cnt = fut.result()
                preds[a:b] = p
                for k, v in cnt.items():
                    if k not in counters:
                        counters[k] = np.zeros((n,) + v.shape[1:], dtype=v.dtype)
                    counters[k][a:b] = v
                bar.update(b - a)
    # the figures as evaluate() makes them from classify()'s rows, by the same code
    return score(cn, Classified(preds, None, counters), y, steps=steps, seed=seed,
                 warmup=warmup)
