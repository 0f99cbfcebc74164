# trainmq: `make demo` runs the main job, `make test` runs the tests.
# Both create and refresh the virtual environment in .venv themselves.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_ARGS ?=
TORCH_VERSION := 2.13.0

.PHONY: venv demo test lint bench clean browser chaos

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# Exactly this torch: a looser range would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install -q 'torch==$(TORCH_VERSION)'
	$(BIN)/python -m pip install -q -e '.[dev,server,aws,bench,train,deploy,postgres,hf]' 'torch==$(TORCH_VERSION)'
	touch $(STAMP) $(DEMO_STAMP)

venv: $(STAMP)

# The demo needs only the train extra, not the test and deployment tools; a venv that
# `make test` made already has it.
DEMO_STAMP := $(VENV)/.demo-stamp
$(DEMO_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q 'torch==$(TORCH_VERSION)'
	$(BIN)/python -m pip install -q -e '.[train]' 'torch==$(TORCH_VERSION)'
	touch $(DEMO_STAMP)

# The main job: prepare -> train -> evaluate on real worker processes, with live progress;
# ends with a summary, the loss curve (.trainmq/demo/loss.png) and report.json.
demo: $(DEMO_STAMP)
	$(BIN)/trainmq demo $(DEMO_ARGS)

# The console's browser tests drive Debian's chromium through Playwright (no browser download).
browser:
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)

test: venv browser
	$(BIN)/python -m pytest

# The long crash run: >= 1000 SIGKILLs of agents and servers and >= 1000 power-loss disk
# states, then a table (`make test` runs the quick version in tests/crash/).
chaos: venv
	$(BIN)/python -m tests.crash.chaos --kills 1000 --power-states 1000

lint: venv
	$(BIN)/ruff check src tests bench deploy examples
	$(BIN)/mypy
	$(BIN)/mypy --strict deploy/aws/trainmq_stack deploy/aws/__main__.py

bench: venv
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/http.py
	$(BIN)/python bench/worker.py
	$(BIN)/python bench/worker_idle.py
	$(BIN)/python bench/pipeline.py

clean:
	rm -rf $(VENV) .trainmq .pytest_cache .mypy_cache .ruff_cache
