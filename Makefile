# trainmq: `make demo` runs the main job, `make test` runs the tests.
# Both create and refresh the virtual environment in .venv themselves.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_DB := .trainmq/demo/queues.db
TORCH_VERSION := 2.13.0

.PHONY: venv demo test lint bench clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# Exactly this torch: a looser range would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install -q 'torch==$(TORCH_VERSION)'
	$(BIN)/python -m pip install -q -e '.[dev,server,bench,train,deploy]' 'torch==$(TORCH_VERSION)'
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	@rm -rf .trainmq/demo
	@echo "== create a training queue with a dead-letter queue"
	$(BIN)/trainmq queue create train-requests --dlq train-requests-dlq --max-receives 2 --db $(DEMO_DB)
	@echo "== send two training requests"
	$(BIN)/trainmq send train-requests '{"run_id": "r-17", "dataset": "9f3c"}' --db $(DEMO_DB)
	$(BIN)/trainmq send train-requests '{"run_id": "r-18", "dataset": "9f3c"}' --attribute priority=high --db $(DEMO_DB)
	@echo "== receive one and delete it (the consumer finished its work)"
	$(BIN)/trainmq receive train-requests --delete --db $(DEMO_DB)
	@echo "== receive the other twice without deleting (a consumer that keeps failing)"
	$(BIN)/trainmq receive train-requests --visibility 0 --db $(DEMO_DB)
	$(BIN)/trainmq receive train-requests --visibility 0 --db $(DEMO_DB)
	@echo "== the third receive moves it to the dead-letter queue (maxReceiveCount 2)"
	@$(BIN)/trainmq receive train-requests --db $(DEMO_DB) 2>/dev/null || echo "(nothing delivered: the message is now in train-requests-dlq)"
	$(BIN)/trainmq stats --db $(DEMO_DB)

# The console's browser tests drive Debian's chromium through Playwright (no browser download).
browser:
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)

test: venv browser
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: venv
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/http.py
	$(BIN)/python bench/worker.py

clean:
	rm -rf $(VENV) .trainmq .pytest_cache .mypy_cache .ruff_cache
