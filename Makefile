# The README's two commands: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint torture bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installs are stamped so that a second `make` does not reinstall; editing pyproject.toml does.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-run

demo: $(VENV)/.installed-run
	rm -rf demo
	$(BIN)/reminder init demo --demo
	$(BIN)/reminder --config demo/reminder.toml send-due
	$(BIN)/reminder --config demo/reminder.toml status
	@echo
	@echo "Reminders written to demo/outbox/:"
	@ls demo/outbox

lint: $(VENV)/.installed-test
	$(BIN)/ruff check reminder_cli tests benchmarks
	$(BIN)/ruff format --check reminder_cli tests benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

torture: $(VENV)/.installed-test
	$(BIN)/pytest -q -m torture --torture

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf $(VENV) demo build dist .pytest_cache .mypy_cache .ruff_cache
