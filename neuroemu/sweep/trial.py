"""One trial of a sweep, as a Dask worker runs it: the trial's netlist and training settings
(:mod:`.config`), training with Equilibrium Propagation (:func:`neuroemu.learn.train.train`),
then the validation images classified as ``neuroemu eval`` does
(:func:`neuroemu.learn.evaluate.evaluate`) and, with an ``[energy]`` profile, priced by
:func:`neuroemu.energy.report.estimate_energy`.

Everything a trial computes follows from its config (the spec's settings, the searched
values and the seed) and the data: the same config gives the same weights and figures bit for
bit, except the wall times.  A trial that raises is a failed trial: :func:`run_trial` returns
its error instead of raising, so one bad configuration (a diverging learning rate, a netlist
the validator refuses) never stops the sweep.

The data travel to the workers once (:func:`pack_data`): images that are bytes / 255 (MNIST's)
as their bytes, 8x smaller, and unpacked by the same division.
"""

from __future__ import annotations

import os
import socket
import time
import traceback

import numpy as np

from ..describe import from_dict
from ..engines import build
from ..errors import NeuroemuError
from .config import configure_dict, hyper_of

__all__ = ["run_trial", "pack_data", "unpack_images", "trial_netlist"]


def pack_images(images: np.ndarray) -> dict:
    """``{"u8": bytes}`` when ``images == bytes / 255.0`` exactly, else ``{"f64": images}``."""
    x = np.asarray(images, dtype=np.float64)
    u8 = np.rint(x * 255.0)
    if x.size and (u8.min() < 0 or u8.max() > 255):
        return {"f64": x}
    u8 = u8.astype(np.uint8)
    return {"u8": u8} if np.array_equal(u8 / 255.0, x) else {"f64": x}


def unpack_images(packed: dict) -> np.ndarray:
    return packed["u8"] / 255.0 if "u8" in packed else packed["f64"]


def pack_data(fit_x, fit_y, val_x, val_y) -> dict:
    """The images and labels a sweep's trials train and validate on, packed for the workers."""
    return {"fit_x": pack_images(fit_x), "fit_y": np.asarray(fit_y, dtype=np.int64),
            "val_x": pack_images(val_x), "val_y": np.asarray(val_y, dtype=np.int64)}


def trial_netlist(base, config):
    """The trial's netlist before training (the base netlist with its neuron settings)."""
    return from_dict(configure_dict(base, config["neuron"]), path="<trial netlist>")


def run_trial(config: dict, data: dict, base, *, keep_netlist: bool = True) -> dict:
    """Run one trial; returns ``{"metrics": {...}, "hyper": {...}, "netlist": Netlist,
    "worker": ..., "wall_seconds": ...}`` or, if it failed, ``{"error": one line,
    "traceback": text, ...}``."""
    t0 = time.perf_counter()
    where = f"{socket.gethostname()}:{os.getpid()}"
    try:
        out = _run(config, data, base, keep_netlist)
    except Exception as exc:   # noqa: BLE001 -- a failed trial is a result, not a crash
        line = " ".join(str(exc).split())
        return {"error": f"{type(exc).__name__}: {line}" if not isinstance(exc, NeuroemuError)
                else line, "traceback": traceback.format_exc(limit=-8),
                "worker": where, "wall_seconds": time.perf_counter() - t0}
    out["worker"] = where
    out["wall_seconds"] = out["metrics"]["wall_seconds"] = time.perf_counter() - t0
    return out


def _run(config: dict, data: dict, base, keep_netlist: bool) -> dict:
    from dataclasses import asdict

    from ..learn.evaluate import evaluate
    from ..learn.train import train
    t0 = time.perf_counter()
    net = trial_netlist(base, config)
    cn = build(net)
    tr, ev = config["train"], config["eval"]
    hp = hyper_of(cn, tr)
    seed, threads = int(config["seed"]), int(config.get("threads", 1))
    fit_x, fit_y = unpack_images(data["fit_x"]), data["fit_y"]
    val_x, val_y = unpack_images(data["val_x"]), data["val_y"]
    if tr.get("images"):
        fit_x, fit_y = fit_x[:tr["images"]], fit_y[:tr["images"]]
    if tr.get("validation_images"):
        val_x, val_y = val_x[:tr["validation_images"]], val_y[:tr["validation_images"]]
    epochs = int(tr.get("epochs", 1))
    history = []
    if epochs:
        res = train(cn, fit_x, fit_y, epochs=epochs, hyper=hp, seed=seed,
                    shuffle=bool(tr.get("shuffle", False)), threads=threads,
                    init=tr.get("init", "netlist"))
        history = res.history
    t_train = time.perf_counter() - t0
    steps = int(ev.get("steps", hp.n_free))
    warmup = int(ev.get("warmup", 0))
    t1 = time.perf_counter()
    r = evaluate(cn, val_x, val_y, steps=steps, batch=int(ev.get("batch", 100)),
                 threads=threads, warmup=warmup)
    metrics = {"validation_error": r.error, "validation_errors": r.errors,
               "validation_images": r.n, "spikes_per_inference": r.spikes_per_sample,
               "syn_events_per_inference": r.syn_events_per_sample,
               "syn_events_per_weight": r.syn_events_per_weight or 0.0,
               "syn_events_per_synapse": r.syn_events_per_synapse, "weights": r.weights,
               "synapses": r.synapses, "eval_steps": steps, "eval_warmup": warmup,
               "spikes_per_population": r.spikes_per_population}
    energy = config.get("energy") or {}
    if energy.get("profile"):
        from ..energy.report import estimate_energy
        n = min(int(energy.get("samples", 100)), len(val_x))
        rep = estimate_energy(cn, energy["profile"], x=val_x[:n], steps=warmup + steps)
        metrics["joules_per_inference"] = rep.per_inference_j
        metrics["energy_samples"] = n
    metrics["train_seconds"] = t_train
    metrics["eval_seconds"] = time.perf_counter() - t1
    if history:
        metrics["running_error"] = history[-1]["running_error"]
    out = {"metrics": metrics, "hyper": asdict(hp)}
    if keep_netlist:
        out["netlist"] = cn.to_netlist()
    return out
