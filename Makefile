# `make run` installs everything and starts the app; `make test` installs everything and runs
# the whole test suite headless. Both are all a fresh Debian machine with Python 3.11 needs.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-all lint bench clean

$(STAMP): requirements.txt requirements-dev.txt scripts/setup.sh
	./scripts/setup.sh requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(PY) main.py

# ruff first: style problems fail CI like failing tests do.
test: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check --quiet .
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

# Everything, including the tests marked slow (8K round trips, longer training runs).
test-all: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -m ""

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) main.py bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
