# Two commands for a new user: `make demo` and `make test` (both create or reuse .venv).
#
# torch: a bare `torch` requirement can pull a CUDA build of several GB. When the venv has no
# torch yet, we install $(TORCH) first (on this lab's machines torch==2.13.0 resolves to a
# local CPU wheel); setup.cfg then only asks for torch>=2.1, so an installed torch is kept.
# GPU users: `make demo TORCH='torch==2.13.0 --index-url https://download.pytorch.org/whl/cu124'`,
# or reuse an environment that already has torch: `make demo VENV_FLAGS=--system-site-packages`.

PYTHON ?= python3
VENV ?= .venv
VENV_FLAGS ?=
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.spectral_lab-installed
PYTEST_ARGS ?=

.PHONY: demo test setup clean-venv

setup: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV_FLAGS) $(VENV)

$(STAMP): setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/spectral-lab record --out trajectories/demo-sines.h5 --overwrite
	$(BIN)/spectral-lab info trajectories/demo-sines.h5
	$(BIN)/spectral-lab analyze amplitudes trajectories/demo-sines.h5
	$(BIN)/spectral-lab plot amplitudes trajectories/demo-sines.h5 -o figures/demo-sines-amplitudes.png
	$(BIN)/spectral-lab record --signal image --iterations 200 --out trajectories/demo-photo.h5 --overwrite
	$(BIN)/spectral-lab info trajectories/demo-photo.h5
	$(BIN)/spectral-lab analyze psnr trajectories/demo-photo.h5
	$(BIN)/spectral-lab plot psnr trajectories/demo-photo.h5 -o figures/demo-photo-psnr.png

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
