# Two commands for a fresh machine: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/nextmonth-health demo --fast

# redis-server and Chromium, from Debian's packages when missing (or one line saying how);
# then the gates (lint, format, types), then the suite.
test: $(STAMP)
	@.ci/test-deps
	$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest

# What CI holds besides the tests: ruff's lint and format, and mypy over src/ (strict on
# the public face). `$(BIN)/ruff format .` fixes the format.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache

# The web examples: a small site with the middleware, the overlay and the admin view.
.PHONY: example-starlette example-flask example-django

example-starlette: $(STAMP)
	$(BIN)/python examples/starlette_app.py

example-flask: $(STAMP)
	$(BIN)/python examples/flask_app.py

example-django: $(STAMP)
	$(BIN)/python examples/django_app/manage.py runserver 127.0.0.1:8002 --noreload
