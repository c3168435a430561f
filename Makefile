# Two commands for a fresh machine: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/nextmonth-health demo --fast

# redis-server and Chromium, from Debian's packages when missing (or one line saying how).
test: $(STAMP)
	@.ci/test-deps
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

# The web examples: a small site with the middleware, the overlay and the admin view.
.PHONY: example-starlette example-flask example-django

example-starlette: $(STAMP)
	$(BIN)/python examples/starlette_app.py

example-flask: $(STAMP)
	$(BIN)/python examples/flask_app.py

example-django: $(STAMP)
	$(BIN)/python examples/django_app/manage.py runserver 127.0.0.1:8002 --noreload
