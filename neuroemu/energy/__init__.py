"""Energy: hardware profiles (data files), the hardware model (placement on a mesh, XY
routing, packets) and the accounting that turns a run's exact event counts into joules.

- :mod:`.hardware` -- profiles, placement, route tables, counts per event kind, prices;
- :mod:`.accounting` -- activity of a run or a trace, the real-valued baseline, the report;
- :mod:`.ann` -- the one-pass quantised ANN baseline, synaptic events per weight, the weight
  memory of a training update, the memory footprint;
- :mod:`.report` -- :func:`~.report.estimate_energy` (``neuroemu.estimate_energy``) and
  :class:`~.report.EnergyReport`: a run, a trace or a netlist to joules in one call, the text
  and JSON of ``neuroemu energy``; :mod:`.plots` its stacked-bar pictures.

See docs/energy-model.md for the model and the source of every number.
"""

from __future__ import annotations
