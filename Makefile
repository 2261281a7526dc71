# Set-up and everyday commands. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Where torch comes from: pip's default index unless set (e.g. PyTorch's CPU-only wheel index)
TORCH_INDEX_URL ?=

.PHONY: demo test test-slow lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first, the CPU build, so that nothing later pulls a CUDA build
	$(BIN)/pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	$(BIN)/pip install --quiet -e ".[dev,bench,dask,compiled]"
	touch $(STAMP)

demo: $(STAMP)  ## pretrain on the sample source shops, adapt to the target, export Parquet
	$(BIN)/rectransfer demo --workdir demo_output

test: $(STAMP)  ## the whole test suite (unit, end-to-end with the real encoder, Prefect flows)
	$(BIN)/python -m pytest

test-slow: $(STAMP)  ## the long crash-safety loops (many SIGKILLs and saves), about two minutes
	$(BIN)/python -m pytest -m slow

lint: $(STAMP)  ## ruff, mypy and the layer contract (docs/ARCHITECTURE.md)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) demo_output
