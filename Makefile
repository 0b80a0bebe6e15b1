# skysolve developer entry points. Every target creates .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench soak mutate lint docs clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,plot,demo,docs]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/skysolve demo

# the suite runs on up to 4 of the machine's cores (pytest-xdist; TEST_JOBS=0 runs it in this
# process); each worker builds its own session databases, a few seconds each
TEST_JOBS ?= $(shell $(PYTHON) -c "import os; print(min(4, len(os.sched_getaffinity(0))))")

test: $(STAMP)
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(PY) -m pytest -q --durations=15 -n $(TEST_JOBS)

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) benchmarks/run.py

soak: $(STAMP)
	$(PY) tests/robustness/soak.py

# mutation check (not part of `make test`): plausible bugs planted one at a time in a
# scratch copy, each against its relevant tests; MUTATE_ARGS e.g. "--only planted-roll-sign"
mutate: $(STAMP)
	$(PY) tools/mutate.py --report mutate-report.txt $(MUTATE_ARGS)

# the documentation site (docs/_build/html); any Sphinx warning fails the build
docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks tools

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache docs/_build
