"""``neuroemu netlists``: the networks shipped inside the package, by name."""

from __future__ import annotations


from .. import describe
from .options import dumps

EXAMPLE = """examples:
  neuroemu netlists
  neuroemu run mnist-binary-trained --steps 100     (a shipped network by name)"""


def add_netlists_arguments(p) -> None:
    p.epilog = EXAMPLE
    p.add_argument("--json", action="store_true", help="print the list as JSON")


def netlists_main(args) -> int:
    rows = []
    for name, path in describe.shipped().items():
        net = describe.load(path)
        rows.append({"name": name, "file": str(path), "sizes": list(net.sizes),
                     "description": net.description})
    if args.json:
        print(dumps(rows, indent=1))
        return 0
    width = max((len(r["name"]) for r in rows), default=4)
    for r in rows:
        sizes = "-".join(map(str, r["sizes"]))
        print(f"{r['name']:<{width}}  {sizes:<20} {r['description']}")
    if rows:
        print(f"(in {describe.shipped_dir()}; use a name wherever a netlist file is asked for)")
    return 0
