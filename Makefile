# Two commands a fresh machine needs: `make up` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PEERS  := $(VENV)/.installed-peers
PATTERN ?= deployments/pattern3-caching

.PHONY: up test lint typecheck unit integration e2e golden clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The peer routers (sglang-router, vllm-router) are only needed by the tests and `bench compare --peers`.
$(PEERS): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,peers]'
	@touch $(PEERS)

up: $(STAMP)
	$(BIN)/inferplane up $(PATTERN)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy src

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

integration: $(STAMP)
	$(BIN)/pytest tests/integration -q

e2e: $(STAMP)
	$(BIN)/pytest tests/e2e -q

test: lint typecheck $(PEERS)
	$(BIN)/pytest -q

# Regenerates the golden manifests under tests/data/golden/ after an intended rendering change.
golden: $(STAMP)
	$(BIN)/python -m inferplane.deploy.golden tests/data/golden

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build src/*.egg-info
