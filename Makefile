# Two commands on a fresh machine: `make demo` (the main job) and `make test`.
# Each creates/updates the venv in .venv; every install goes through constraints.txt (torch==2.13.0, CPU).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PIP := $(PY) -m pip install -q --disable-pip-version-check -c constraints.txt

.PHONY: test demo lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -e ".[dev,fast,conformance,keras,jax]"
	$(PY) -c "import torch, initlab; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

demo: $(STAMP)
	$(VENV)/bin/initlab demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) demo-report .pytest_cache .mypy_cache .ruff_cache
