"""Running a sweep: an Optuna study stored in the sweep's folder, trials run as Dask tasks.

The process that runs :func:`run_sweep` is the only one that touches the study: it asks Optuna
for a trial's values, sends the trial to a worker (:func:`neuroemu.sweep.trial.run_trial`),
and tells Optuna the result when it comes back, keeping as many trials in flight as the
cluster has worker threads.  Workers need neuroemu installed, nothing else: the netlist and
the data travel with the tasks (sent to every worker once).

The study is a journal file (``study.journal``, Optuna's ``JournalFileBackend``): every change
is one appended line, so a sweep stopped at any point -- Ctrl-C, a killed process, a lost
machine -- leaves a readable study.  Running the same spec into the same folder resumes it:
finished trials (complete or failed) are kept and never run again; trials that were running
when it stopped are marked failed (``interrupted``) and their values queued to run again.
A stored study made from another search space is refused.

A trial that raises is recorded as failed with its error; a trial whose worker dies is run
again by Dask on another worker, and recorded as failed (``KilledWorker``) after
``distributed.scheduler.allowed-failures`` deaths.  Either way the sweep goes on.
"""

from __future__ import annotations

import json
import sys
import uuid
import warnings
from pathlib import Path

import numpy as np

from ..errors import SweepError
from ..files import check_output
from .cluster import check_where, connect, quiet, worker_count
from .config import trial_config
from .outputs import plot_front, prune_best, save_best, trial_rows, write_tables
from .trial import pack_data, run_trial

__all__ = ["run_sweep", "open_study", "load_data", "rerun", "STUDY_FILE", "OUTPUTS"]

STUDY_FILE = "study.journal"
STUDY_NAME = "neuroemu-sweep"
OUTPUTS = ("results.csv", "results.json", "pareto.png")


def _optuna():
    try:
        import optuna
    except ImportError:
        raise SweepError("Optuna is not installed: pip install 'neuroemu[sweep]' "
                         "(or pip install optuna)") from None
    return optuna


def _sampler(spec, n_existing: int):
    """The spec's sampler, seeded from the spec's seed and the trials already stored (a
    resumed sweep does not draw the first run's values again)."""
    optuna = _optuna()
    seed = int(np.random.SeedSequence([spec.seed, n_existing]).generate_state(1)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if spec.sampler == "tpe":
            return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
        if spec.sampler == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed)
        return optuna.samplers.RandomSampler(seed=seed)


def open_study(spec, out: Path, *, create: bool = True):
    """The study in ``out/study.journal``: created for ``spec``, or loaded and checked to be
    the study of the same search space."""
    optuna = _optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    path = Path(out) / STUDY_FILE
    if not path.is_file() and not create:
        raise SweepError(f"{path}: no study there (run the sweep first)")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(path)))
    try:
        existing = optuna.load_study(study_name=STUDY_NAME, storage=storage)
    except KeyError:
        existing = None
    n = len(existing.get_trials(deepcopy=False)) if existing else 0
    sampler = _sampler(spec, n)
    if existing is None:
        study = optuna.create_study(study_name=STUDY_NAME, storage=storage, sampler=sampler,
                                    directions=["minimize"] * len(spec.objectives))
        study.set_user_attr("search_space", spec.search_space())
        study.set_user_attr("spec_text", spec.text)
        return study
    study = optuna.load_study(study_name=STUDY_NAME, storage=storage, sampler=sampler)
    stored, now = study.user_attrs.get("search_space"), spec.search_space()
    if stored != now:
        key = next((k for k in sorted(set(now) | set(stored or {}))
                    if (stored or {}).get(k) != now.get(k)), "?")
        raise SweepError(f"{path}: the stored study was made by another spec ({key}: stored "
                         f"{json.dumps((stored or {}).get(key))[:80]}, now "
                         f"{json.dumps(now.get(key))[:80]}); give another --out to start a "
                         f"new sweep")
    return study


def load_data(spec, data_dir=None) -> tuple[dict, str]:
    """(the packed images and labels the trials train and validate on, what they are)."""
    from ..learn import datasets

    def limit(key):      # images the trials can use: the fixed count, or the largest searched
        p = next((p for p in spec.params if p.field == f"train.{key}"), None)
        if p is not None:
            return int(max(p.choices) if p.kind == "choice" else p.high)
        return spec.train.get(key)
    if spec.dataset == "digits":
        x, y = datasets.digits()
        fit, val = (x[:200], y[:200]), (x[200:], y[200:])
        what = "the 300 MNIST test digits bundled with neuroemu: {} of 0-199 train, {} of " \
            "200-299 validate (for trying a spec; not for results)"
    else:
        full = datasets.load(spec.dataset, data_dir if data_dir is not None else spec.data,
                             split="train")
        f, v = datasets.train_validation_split(full)
        fit, val = (f.images, f.labels), (v.images, v.labels)
        what = f"{spec.dataset} training images: {{}} of 0-{len(f) - 1} train, {{}} of " \
            f"{len(f)}-{len(full) - 1} validate (from {full.path})"
    nf, nv = limit("images") or len(fit[0]), limit("validation_images") or len(val[0])
    for key, n, have in (("images", nf, len(fit[0])), ("validation_images", nv, len(val[0]))):
        if n > have:
            raise SweepError(f"{spec.path}: train.{key}: the dataset has {have} such images "
                             f"(got {n})")
    return pack_data(fit[0][:nf], fit[1][:nf], val[0][:nv], val[1][:nv]), \
        what.format(f"the first {nf}", f"the first {nv}")


def _counted(t) -> bool:
    """A finished trial that counts towards the spec's number of trials."""
    return t.state.name in ("COMPLETE", "FAIL") and not t.user_attrs.get("interrupted")


def _requeue(study, trial_id: int, number: int, params: dict, why: str) -> None:
    """Mark a trial that never finished as failed (``interrupted``) and queue its values.
    (Optuna sets user attributes through a live Trial only; a trial left running by another
    process is reached through the storage, by its id.)"""
    optuna = _optuna()
    for key, value in (("interrupted", True), ("error", why)):
        study._storage.set_trial_user_attr(trial_id, key, value)
    study.tell(number, state=optuna.trial.TrialState.FAIL)
    study.enqueue_trial(params, user_attrs={"rerun_of": number})


def _recover(study) -> int:
    """Trials left running by a sweep that stopped: failed and queued again."""
    stale = [t for t in study.get_trials(deepcopy=False) if t.state.name == "RUNNING"]
    for t in stale:
        _requeue(study, t._trial_id, t.number, dict(t.params), "interrupted before it "
                 "finished (its values were queued to run again)")
    return len(stale)


def _values(spec, trial) -> dict:
    values: dict = {}
    for p in spec.params:
        if p.active(values):
            values[p.field] = p.suggest(trial)
    return values


def _outputs(study, spec, out: Path, extra: dict, plot: bool) -> list[dict]:
    rows = trial_rows(study, spec)
    write_tables(rows, spec, out, extra)
    if plot and any(r["state"] == "complete" for r in rows):
        from ..files import replacing
        with replacing(out / "pareto.png") as tmp:
            plot_front(rows, spec, tmp)
    return rows


def _check_folder(out: Path, spec) -> None:
    inputs = [spec.path, spec.netlist]
    for name in (STUDY_FILE,) + OUTPUTS:
        check_output(out / name, inputs=inputs, resumable=True)
    if not (out / STUDY_FILE).exists():
        clash = [n for n in OUTPUTS if (out / n).exists()]
        if clash:
            raise SweepError(f"{out}: holds {clash[0]} but no {STUDY_FILE}: not a sweep's "
                             f"folder (give another --out)")


def run_sweep(spec, out, *, workers: int | None = None, scheduler: str | None = None,
              client=None, trials: int | None = None, data_dir=None, data=None,
              progress: bool = True, log=None, trial_fn=None, plot: bool = True) -> dict:
    """Run (or resume) the sweep of ``spec`` into the folder ``out`` until the study holds
    ``trials`` (default: the spec's) finished trials; write the tables, the plot and the
    front's netlists.  ``workers``/``scheduler``/``client``: where the trials run
    (:func:`neuroemu.sweep.cluster.connect`; default a local cluster, one worker per core).
    ``data``: (packed data, description) instead of :func:`load_data`.  ``trial_fn``: what a
    worker calls (default :func:`~neuroemu.sweep.trial.run_trial`).  ``log``: a function
    taking a line of text.  Returns ``{"rows": [...], "ran": n, "failed": n, "resumed": n,
    "requeued": n, "front": [trial numbers]}``."""
    from tqdm import tqdm
    out = Path(out)
    if client is None:
        check_where(workers, scheduler)
    if out.exists() and not out.is_dir():
        raise SweepError(f"{out}: is not a folder")
    target = spec.trials if trials is None else int(trials)
    if target < 0:
        raise SweepError(f"--trials: must be an integer >= 0 (got {target})")
    _check_folder(out, spec)
    loaded = None       # a new sweep reads its data before it writes anything
    if not (out / STUDY_FILE).exists() and target > 0:
        loaded = data if data is not None else load_data(spec, data_dir)
    out.mkdir(parents=True, exist_ok=True)
    study = open_study(spec, out)
    log = log or (lambda line: None)
    requeued = _recover(study)
    trials_now = study.get_trials(deepcopy=False)
    done = sum(_counted(t) for t in trials_now)
    if not trials_now and spec.reference is not None:
        study.enqueue_trial(spec.reference, user_attrs={"reference": True})
    remaining = max(0, target - done)
    if done and remaining:
        log(f"resuming {out / STUDY_FILE}: {done} of {target} trials finished"
            + (f"; {requeued} interrupted trial(s) queued to run again" if requeued else ""))
    ran = failed = 0
    if remaining:
        packed, what = loaded or (data if data is not None else load_data(spec, data_dir))
        if "data" not in study.user_attrs:
            study.set_user_attr("data", what)
    extra = {"data": study.user_attrs.get("data")}
    if remaining:
        fn = trial_fn or run_trial
        with quiet(), connect(workers, scheduler, client) as c:
            ran, failed = _loop(study, spec, out, c, fn, packed, remaining, extra, log,
                                tqdm(total=remaining, desc=f"sweep {spec.name}", unit="trial",
                                     disable=not (progress and sys.stderr.isatty())))
    rows = _outputs(study, spec, out, extra, plot)
    return {"rows": rows, "ran": ran, "failed": failed, "resumed": done, "requeued": requeued,
            "front": [r["trial"] for r in rows if r["pareto"]]}


# Times a trial is sent again when Dask lost it (cancelled it) rather than it failing.
LOST_RETRIES = 3


def _hold(value):
    """A task whose result is its argument: data that Dask can recompute."""
    return value


def _lost(res) -> bool:
    """True when a task's outcome is Dask's loss of it (cancelled, its inputs or result gone
    with a dead worker), not the trial's failure."""
    import asyncio
    import concurrent.futures
    return isinstance(res, (asyncio.CancelledError, concurrent.futures.CancelledError)) or \
        type(res).__name__ in ("FutureCancelledError", "CancelledError")


def _loop(study, spec, out, c, fn, packed, remaining, extra, log, bar):
    """Keep the workers busy until ``remaining`` trials have finished."""
    from distributed import as_completed
    # The data and the netlist as tasks, not scattered copies: a worker that dies with the
    # only copy costs a recomputation from the scheduler's graph, never the data.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)      # "large object in task graph"
        shared = {k: c.submit(_hold, v, pure=False, key=f"neuroemu-{k}-{uuid.uuid4().hex[:8]}")
                  for k, v in (("data", packed), ("base", spec.base))}
    slots = worker_count(c)
    pending: dict = {}
    ac = as_completed(with_results=True, raise_errors=False)
    submitted = ran = failed = 0

    def send(trial, config, lost):
        fut = c.submit(fn, config, shared["data"], shared["base"], pure=False,
                       key=f"neuroemu-trial-{trial.number}-{uuid.uuid4().hex[:8]}")
        pending[fut] = (trial, config, lost)
        ac.add(fut)

    def submit():
        trial = study.ask()
        values = _values(spec, trial)
        seed = spec.seed + trial.number if spec.seed_per_trial else spec.seed
        config = trial_config(spec, values, seed=seed)
        config["trial"] = trial.number
        trial.set_user_attr("config", config)
        send(trial, config, 0)

    try:
        with bar:
            while submitted < remaining and len(pending) < slots:
                submit()
                submitted += 1
            for fut, res in ac:
                trial, config, lost = pending.pop(fut)
                if isinstance(res, tuple) and len(res) == 3 and isinstance(res[1], BaseException):
                    res = res[1]            # a task that raised: as_completed's exc_info
                if _lost(res) and lost < LOST_RETRIES:
                    send(trial, config, lost + 1)
                    continue
                if _lost(res):
                    res = {"error": f"Dask lost it {lost + 1} times (the workers running it or "
                           f"holding its inputs died; last: {type(res).__name__}: "
                           f"{' '.join(str(res).split())[:300]})"}
                ok, line = _record(study, spec, out, trial, res, extra)
                ran += 1
                failed += not ok
                bar.update(1)
                bar.set_postfix(failed=failed)
                if bar.disable:
                    log(line)
                if submitted < remaining:
                    submit()
                    submitted += 1
    except KeyboardInterrupt:
        for fut, (trial, _, _) in pending.items():
            fut.cancel()
            _requeue(study, trial._trial_id, trial.number, dict(trial.params),
                     "interrupted (Ctrl-C); its values were queued to run again")
        _outputs(study, spec, out, extra, True)
        raise KeyboardInterrupt(f"the sweep stopped after {ran} trial(s) of this run; run the "
                                f"same command again to resume it") from None
    return ran, failed


def _record(study, spec, out, trial, res, extra) -> tuple[bool, str]:
    """Tell the study a trial's result (a dict, or the exception Dask gave for it); keep its
    netlist if it is on the front."""
    optuna = _optuna()
    if isinstance(res, BaseException):      # the workers died, or Dask gave up on the task
        name = type(res).__name__
        why = " ".join(str(res).split())
        if name == "KilledWorker":
            why = "every worker that ran it died (" + why.split(". ", 1)[0] + ")"
        res = {"error": f"{name}: {why}"[:2000]}
    if "error" in res:
        for k in ("error", "traceback", "worker", "wall_seconds"):
            if res.get(k) is not None:
                trial.set_user_attr(k, res[k])
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        write_tables(trial_rows(study, spec), spec, out, extra)
        return False, f"trial {trial.number} failed: {res['error']}"
    m = res["metrics"]
    for k in ("metrics", "hyper", "worker", "wall_seconds"):
        trial.set_user_attr(k, res[k])
    study.tell(trial, [float(m[o]) for o in spec.objectives])
    rows = trial_rows(study, spec)
    write_tables(rows, spec, out, extra)
    front = [r["trial"] for r in rows if r["pareto"]]
    if trial.number in front and res.get("netlist") is not None:
        save_best(out, spec, trial.number, res["netlist"], rows[trial.number])
    prune_best(out, front)
    figures = ", ".join(f"{o} {m[o]:.4g}" for o in spec.objectives)
    return True, f"trial {trial.number}: {figures} ({res['wall_seconds']:.1f} s)"


def rerun(spec, out, number: int, data_dir=None, data=None) -> tuple[dict, dict]:
    """Run trial ``number`` of the stored study again in this process from its recorded
    settings and seed; returns (the recorded figures, the new ones)."""
    study = open_study(spec, Path(out), create=False)
    trials = study.get_trials(deepcopy=False)
    if not 0 <= number < len(trials):
        raise SweepError(f"--rerun {number}: the study holds trials 0-{len(trials) - 1}")
    t = trials[number]
    if t.state.name != "COMPLETE" or "config" not in t.user_attrs:
        raise SweepError(f"--rerun {number}: trial {number} did not complete "
                         f"({t.state.name.lower()})")
    packed, _ = data if data is not None else load_data(spec, data_dir)
    res = run_trial(t.user_attrs["config"], packed, spec.base, keep_netlist=False)
    if "error" in res:
        raise SweepError(f"--rerun {number}: the trial failed this time: {res['error']}")
    return t.user_attrs["metrics"], res["metrics"]
