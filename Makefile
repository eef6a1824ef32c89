# Two entry points (see README): `make demo` and `make test`. Setup runs once; reruns reuse it.
VENV ?= .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.paxion-ready

.PHONY: demo test setup

setup: $(READY)

# torch is pinned here, not in pyproject.toml: 2.13.0 is the CPU wheel our machines carry; an
# unpinned torch would pull a multi-GB CUDA build.
$(READY): pyproject.toml scripts/install_wordnet.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[hf,dev]'
	$(PY) scripts/install_wordnet.py
	touch $@

demo: $(READY)
	$(VENV)/bin/paxion demo

test: $(READY)
	$(VENV)/bin/python -m pytest -q
