# sciml: every target sets itself up (virtual environment + install) on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.sciml-installed
PYTEST_ARGS ?=

.PHONY: install test test-all test-mindeps demo lint format docs bench clean check-wheel

install: $(STAMP)

$(STAMP): pyproject.toml tools/install-torch.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	sh tools/install-torch.sh $(PY)
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

## make test: the default test suite (about 9 minutes on 2 CPU cores; slow tests excluded)
test: install
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

## make test-all: every test, slow ones included
test-all: install
	OMP_NUM_THREADS=1 $(PY) -m pytest -q $(PYTEST_ARGS)

## make test-mindeps: the default suite in $(MINDEPS_VENV) with every dependency at the lowest
## version pyproject.toml allows that has a wheel for this Python (uv's resolver), and the plot
## extra; torch excepted: the build make test would install (sympy then at that torch's floor,
## not the version installing torch brought)
MINDEPS_VENV ?= .venv-mindeps
MINDEPS_PY := $(MINDEPS_VENV)/bin/python
MINDEPS_UV := $(MINDEPS_VENV)/bin/uv pip
test-mindeps:
	test -x $(MINDEPS_PY) || $(PYTHON) -m venv $(MINDEPS_VENV)
	$(MINDEPS_PY) -m pip install -q uv
	sh tools/install-torch.sh $(MINDEPS_PY)
	# (why) the lowest versions are pinned alone (--no-deps): resolved together with the newest
	# transitive ones (pandas, contourpy), they would be pulled up (numpy 2.0.2, scipy 1.13)
	$(MINDEPS_UV) compile -q --python $(MINDEPS_PY) --resolution lowest --no-deps \
		--only-binary :all: --extra plot pyproject.toml | grep -v -E "^(torch|sympy)==" \
		> $(MINDEPS_VENV)/lowest.txt
	$(MINDEPS_PY) -c "import torch; print('torch==' + torch.__version__)" >> $(MINDEPS_VENV)/lowest.txt
	$(MINDEPS_UV) install -q --python $(MINDEPS_PY) --resolution lowest-direct --only-binary :all: \
		--constraint $(MINDEPS_VENV)/lowest.txt --upgrade-package sympy -e ".[plot]" "pytest>=7.4"
	$(MINDEPS_PY) -m pip freeze --exclude-editable
	OMP_NUM_THREADS=1 $(MINDEPS_PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

## make demo: generate Darcy data, train an FNO, report the test error, plot (it runs 2 threads;
## examples/demo.py --threads 1 took 7.7 min on 2 shared cores, 2 threads up to 45 min there)
demo: install
	$(PY) examples/demo.py --out demo_out

lint: install
	$(PY) -m ruff check sciml tests examples benchmarks datasets tools
	$(PY) -m ruff format --check sciml tests examples benchmarks datasets tools

format: install
	$(PY) -m ruff format sciml tests examples benchmarks datasets tools
	$(PY) -m ruff check --fix sciml tests examples benchmarks datasets tools

## make check-wheel: build the wheel, install it in a fresh venv, load every shipped model offline
check-wheel: install
	$(PY) tools/check_wheel.py

docs: install
	$(PY) -m mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) $(MINDEPS_VENV) site demo_out .pytest_cache
