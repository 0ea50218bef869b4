# The two commands of the quick start: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow test-ray test-gpu test-netns test-all bench install clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml constraints.txt
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e ".[atari,mujoco,games,test,plots,video,search]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/rlcore run experiments/ppo_cartpole.yaml

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

test-ray: $(STAMP)
	$(PY) -m pytest -q -m ray

test-gpu: $(STAMP)
	$(PY) -m pytest -q -m gpu

test-netns: $(STAMP)
	$(PY) -m pytest -q -m netns

test-all: $(STAMP)
	$(PY) -m pytest -q -m "slow or ray or not slow"

bench: $(STAMP)
	$(PY) benchmarks/cartpole.py

clean:
	rm -rf $(VENV) build *.egg-info
