"""Design-space sweeps and data-parallel evaluation on Dask (``neuroemu sweep SPEC.toml``,
``neuroemu eval --workers N | --scheduler ADDRESS``; docs/sweep.md).

- :mod:`.spec` -- the spec file, checked field by field; :mod:`.config` -- one trial's
  settings applied to the netlist and the training;
- :mod:`.trial` -- one trial as a worker runs it (train, classify the validation images,
  count, price);
- :mod:`.runner` -- the Optuna study in the sweep's folder, the trials on Dask, resuming,
  failures; :mod:`.outputs` -- the tables, the Pareto plot, the front's netlists;
- :mod:`.cluster` -- a local cluster sized to the machine, or a scheduler by address;
- :mod:`.parallel_eval` -- :func:`neuroemu.learn.evaluate.evaluate` split across workers,
  with the same result.

Optuna and Dask distributed are optional (``pip install 'neuroemu[sweep]'``): nothing here
imports them until a sweep or a parallel evaluation runs.
"""

from .spec import OBJECTIVES, Param, Spec, load_spec, loads_spec

__all__ = ["OBJECTIVES", "Param", "Spec", "load_spec", "loads_spec", "run_sweep",
           "evaluate_distributed"]


def run_sweep(spec, out, **kwargs):
    """:func:`neuroemu.sweep.runner.run_sweep` (``spec``: a :class:`Spec` or a spec file)."""
    from .runner import run_sweep as run
    return run(spec if isinstance(spec, Spec) else load_spec(spec), out, **kwargs)


def evaluate_distributed(net, images, labels, steps=None, **kwargs):
    """:func:`neuroemu.sweep.parallel_eval.evaluate_distributed`."""
    from .parallel_eval import evaluate_distributed as ev
    return ev(net, images, labels, steps, **kwargs)
