# vtbench: `make notebooks` and `make test` create the environment when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
FULL   ?=
ONLY   ?=

.PHONY: env test notebooks lab bench clean-env

# (a venv whose python has no pip was cut short while it was made: made again from scratch)
$(STAMP): pyproject.toml Makefile
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv --clear $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0   # first: the CPU wheel, never a CUDA build
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m vtbench.align.backends.cpu --build \
	    || echo "vtbench: the C++ CPU kernel did not build (see above); the torch backend will be used"
	@touch $(STAMP)

env: $(STAMP)

test: env
	$(BIN)/python -m pytest -q

notebooks: env
	$(BIN)/python -m vtbench.notebooks $(if $(filter-out 0 no false,$(FULL)),--full) $(if $(ONLY),--only $(ONLY))

lab: env
	$(BIN)/jupyter lab notebooks

bench: env
	$(BIN)/python -m vtbench.bench kernels

clean-env:
	rm -rf $(VENV)
