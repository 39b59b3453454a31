# Two commands do all the set-up on a fresh machine:
#   make demo   - install, then run the main job on the built-in default model
#   make test   - install, then lint, type-check and run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
MODEL  ?= smollm2-135m
# -rs: say why each skipped test was skipped (CI passes -rA: every outcome)
PYTEST_FLAGS ?= -rs

.PHONY: setup demo test test-slow test-gpu bench-gpu studies lint bench mutation clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch that lies on this disk; never the multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]' -c constraints.txt
	touch $(STAMP)

setup: $(STAMP)

# On a 2-core CPU: calibration (65,536 tokens, cached afterwards), the uniform limit
# bisected, 16 trials of 10 layer groups in all, then the front re-measured on held-out
# text (5 points); prints the Pareto set, the chosen point and its gain over the uniform
# limit, and writes the report to studies/results/$(MODEL)/. More trials: TRIALS=100.
TRIALS ?= 16
demo: $(STAMP)
	$(VENV)/bin/frontier find --model $(MODEL) --slo "ppl<2.0" --trials $(TRIALS) --groups 10 --report-points 5

lint: $(STAMP)
	$(VENV)/bin/ruff check frontier objectives tests benchmarks tools
	$(VENV)/bin/ruff format --check frontier objectives tests benchmarks tools
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest -q $(PYTEST_FLAGS)

test-slow: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_FLAGS) -m slow

# CUDA checks of the engine (skipped where no GPU is present; CI has none).
test-gpu: $(STAMP)
	$(PY) -m pytest -q -rs tests/frontier/test_cuda.py

# Time and memory of a study per model shape (from_config, random weights), on the GPU
# where there is one (see docs/gpu-and-memory.md).
bench-gpu: $(STAMP)
	$(PY) benchmarks/gpu.py

# The committed studies with task floors (hours on a 2-core CPU; see studies/README.md).
studies: $(STAMP)
	$(VENV)/bin/frontier find --spec studies/smollm2-135m.toml
	$(VENV)/bin/frontier find --spec studies/gemma3-270m.toml
	$(VENV)/bin/frontier compare smollm2-135m-tasks gemma3-270m-tasks --out studies/results/compare-tasks

bench: $(STAMP)
	$(PY) benchmarks/engine.py
	$(PY) benchmarks/search.py

# Mutation testing of the modules that decide results (mutmut; hours on 2 cores, not in
# CI): one run per module against the few test files that cover it. MODULES=find kl ...
mutation: $(STAMP)
	nice -n 10 $(PY) tools/mutation.py $(MODULES)

clean:
	rm -rf $(VENV)
