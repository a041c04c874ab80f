# make demo  -- create .venv if missing, install, classify bundled digits with the shipped
#               spiking network, print results, write a trace and a raster picture
# make test  -- create .venv if missing, install, run the test suite (what CI runs)
# make bench -- the benchmark scripts (figures and ratios, not pass/fail)
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test bench converge clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --upgrade pip
	$(VENV)/bin/python -m pip install -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/neuroemu demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest

bench: $(STAMP)
	cd benchmarks && for b in bench_*.py; do ../$(VENV)/bin/python $$b || exit 1; done

converge: $(STAMP)
	$(VENV)/bin/neuroemu converge --runs 20 --json traces/converge.json --plot traces/converge.png --force

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
