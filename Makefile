# The two commands a newcomer needs: `make demo` and `make test`.
# Each creates .venv when missing and installs what it needs first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo lint typecheck pytest bench fuzz install system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages the tests drive as real peers (added as the tests that need them land).
system-deps:
	@bash scripts/system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy src

pytest: $(STAMP) system-deps
	$(BIN)/pytest

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/replygate demo

bench: $(STAMP)
	$(BIN)/python -m bench

# The fuzz tests of `make test`, run long: FUZZ_EXAMPLES per MIME test, FUZZ_API_EXAMPLES
# per API operation (new random cases each run; a failure prints the case to replay).
FUZZ_EXAMPLES ?= 20000
FUZZ_API_EXAMPLES ?= 500
fuzz: $(STAMP)
	REPLYGATE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) REPLYGATE_FUZZ_API_EXAMPLES=$(FUZZ_API_EXAMPLES) \
	  $(BIN)/pytest --timeout=0 -q tests/unit/mail/test_fuzz_understand.py \
	  tests/integration/api/test_schemathesis.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
