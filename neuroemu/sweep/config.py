"""The settings of one trial of a sweep: the spec's fixed changes and the trial's searched
values, applied to the netlist (:func:`configure_dict`) and to the training
(:func:`hyper_of`); :func:`check_config` runs them through the netlist's and the trainer's
validators, :func:`base_value` says what a field is without the search.

``spec`` arguments are :class:`neuroemu.sweep.spec.Spec` objects (this module does not import
that one: it reads the spec's fields only).
"""

from __future__ import annotations

import json

from ..describe.neurons import (ANNEALER_PARAMS, ANNEALERS, CLAMP_PARAMS, MODEL_KEYS,
                                SCHEDULE_PARAMS, SCHEDULES)
from ..errors import NeuroemuError, SweepError

__all__ = ["trial_config", "configure_dict", "hyper_of", "check_config", "base_value",
           "COMPONENTS", "PARAM_TABLES"]

# Neuron keys that are a component (a kind and its parameters) ...
COMPONENTS = {"lam": (SCHEDULES, SCHEDULE_PARAMS), "lam2": (SCHEDULES, SCHEDULE_PARAMS),
              "eps": (ANNEALERS, ANNEALER_PARAMS)}
# ... or a table of parameters without a kind.
PARAM_TABLES = {"clamp": CLAMP_PARAMS}


def _start(key: str, current, param: str) -> dict:
    """The table a searched parameter of ``key`` goes into: the neuron's own (a component
    given by its kind name becomes ``{"kind": name}``), or, where the neuron has none
    (``lam2`` or ``clamp`` absent or switched off), a new one -- for a component, of the first
    kind that has ``param``."""
    if isinstance(current, dict):
        return dict(current)
    if isinstance(current, str):
        return {"kind": current}
    if key in COMPONENTS and param != "kind":
        kinds, params_of = COMPONENTS[key]
        kind = next(k for k in kinds if any(q.name == param for q in params_of[k]))
        return {"kind": kind}
    return {}


def trial_config(spec, values: dict, *, seed: int | None = None) -> dict:
    """The settings of one trial (JSON-ready): the fixed changes and the searched values."""
    neuron = [list(f) for f in spec.fixed]
    train, ev = dict(spec.train), dict(spec.eval)
    rates_at = {}
    for fld, v in values.items():
        parts = fld.split(".")
        if parts[0] == "train" and parts[1] == "rates":
            rates_at[int(parts[2])] = v
        elif parts[0] == "train":
            train[parts[1]] = v
        elif parts[0] == "eval":
            ev[parts[1]] = v
        else:
            neuron.append([fld, v])
    if rates_at:
        rates = list(train.get("rates", spec.defaults["rates"]))
        for i, v in rates_at.items():
            rates[i] = float(v)
        train["rates"] = rates
    return {"neuron": neuron, "train": train, "eval": ev, "energy": dict(spec.energy),
            "threads": spec.threads, "dataset": spec.dataset,
            "seed": spec.seed if seed is None else int(seed),
            "objectives": list(spec.objectives), "params": dict(values)}


def configure_dict(base, neuron_settings) -> dict:
    """The netlist dict (:func:`neuroemu.describe.to_dict`) with the neuron settings applied:
    ``[field, value]`` pairs in order; a component (lam, eps) whose kind changed keeps only
    the parameters of its new kind that were not set explicitly."""
    from ..describe import to_dict
    raw = to_dict(base)
    explicit: dict = {}
    for fld, value in neuron_settings:
        parts = fld.split(".")
        name, rest = (None, parts[1:]) if parts[0] == "neuron" else (parts[1], parts[3:])
        for p in raw["population"]:
            if name is not None and p["name"] != name:
                continue
            nd = p["neuron"]
            model = nd.get("model", "paper")
            if rest[0] not in MODEL_KEYS[model]:
                continue
            if len(rest) == 1:
                nd[rest[0]] = json.loads(json.dumps(value))
                explicit[(p["name"], rest[0])] = set(value) if isinstance(value, dict) else set()
            else:
                comp = nd[rest[0]] = _start(rest[0], nd.get(rest[0]), rest[1])
                comp[rest[1]] = value
                explicit.setdefault((p["name"], rest[0]), set()).add(rest[1])
    for p in raw["population"]:
        nd = p["neuron"]
        for key, (kinds, params_of) in COMPONENTS.items():
            comp = nd.get(key)
            if not isinstance(comp, dict) or comp.get("kind") not in params_of:
                continue
            keep = {"kind"} | {q.name for q in params_of[comp["kind"]]} | \
                explicit.get((p["name"], key), set())
            nd[key] = {k: v for k, v in comp.items() if k in keep}
    return raw


def hyper_of(cn, train: dict):
    """The EP hyper-parameters of a trial: the paper's for this network
    (:meth:`~neuroemu.learn.eqprop.Hyper.for_network`) with the trial's [train] values."""
    from ..learn.eqprop import Hyper
    return Hyper.for_network(cn, beta=train.get("beta"), n_free=train.get("steps_free"),
                             n_nudged=train.get("steps_nudged"), rates=train.get("rates"),
                             rule=train.get("rule"), nudge=train.get("nudge"),
                             batch=train.get("batch"))


def check_config(spec, config: dict):
    """The trial's netlist through the one validator (a NetlistError names the field) and its
    training settings through the trainer's (a TrainError); returns the netlist."""
    from ..describe import from_dict
    from ..engines import build
    net = from_dict(configure_dict(spec.base, config["neuron"]),
                    path=f"{spec.path} (trial netlist)")
    hyper_of(build(net), config["train"])
    if config["train"].get("init") == "glorot" and net.format == 2:
        raise SweepError(f"{spec.path}: train.init: fresh Glorot weights are drawn for chains "
                         f"of dense layers only (got 'glorot')")
    return net


def base_value(spec, fld: str):
    """The value a field has without the search (the netlist's, the fixed settings', the
    paper's training defaults), or None when it has none (or populations disagree)."""
    parts = fld.split(".")
    if parts[0] == "train":
        if parts[1] == "rates":
            return spec.train.get("rates", spec.defaults["rates"])[int(parts[2])]
        if parts[1] in ("images", "validation_images"):
            return spec.train.get(parts[1])
        return spec.train.get(parts[1], spec.defaults.get(parts[1]))
    if parts[0] == "eval":
        if parts[1] == "steps":
            return spec.eval.get("steps", base_value(spec, "train.steps_free"))
        return spec.eval.get(parts[1], {"warmup": 0, "batch": 100}[parts[1]])
    try:
        cfg = trial_config(spec, {})
        net = configure_dict(spec.base, cfg["neuron"])
    except NeuroemuError:
        return None
    pops = [p for p in net["population"]
            if parts[0] == "neuron" or p["name"] == parts[1]]
    rest = parts[1:] if parts[0] == "neuron" else parts[3:]
    found = set()
    for p in pops:
        v = p["neuron"]
        for k in rest:
            v = v.get(k) if isinstance(v, dict) else None
        if v is not None:
            found.add(json.dumps(v))
    return json.loads(found.pop()) if len(found) == 1 else None
