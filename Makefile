# vtbench: `make notebooks` and `make test` create the environment when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
FULL   ?=
ONLY   ?=

.PHONY: env test notebooks lab bench clean-env

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0   # first: the CPU wheel, never a CUDA build
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m vtbench.align.backends.cpu --build || echo "vtbench: no C++ compiler; the torch backend will be used"
	@touch $(STAMP)

env: $(STAMP)

test: env
	$(BIN)/python -m pytest -q

notebooks: env
	$(BIN)/python -m vtbench.notebooks $(if $(FULL),--full) $(if $(ONLY),--only $(ONLY))

lab: env
	$(BIN)/jupyter lab notebooks

bench: env
	$(BIN)/python -m vtbench.bench kernels

clean-env:
	rm -rf $(VENV)
