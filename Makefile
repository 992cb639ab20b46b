# The two commands of the quick start: `make run` and `make test`.
# Both create .venv with a Python >= 3.12 and install the pinned lock file.

SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# The quick start runs the development configuration; production sets DJANGO_DEBUG=0.
export DJANGO_DEBUG ?= 1

# A Python >= 3.12: python3.13, python3.12, pyenv's versions, then python3.
PYTHON ?= $(shell for c in python3.13 python3.12 \
	$$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[2-9]*/bin/python 2>/dev/null | sort -rV) \
	python3 python; do \
	  if "$$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then \
	    command -v "$$c" 2>/dev/null || echo "$$c"; break; \
	  fi; \
	done)

.PHONY: help run serve test test-fast setup lint typecheck messages check-python clean

help:
	@echo "make run    set up, migrate, create demo accounts and serve on http://$(HOST):$(PORT)"
	@echo "make serve  the production server: migrate, collect static files, task worker"
	@echo "            and gunicorn on HOST:PORT (DJANGO_DEBUG=0; see Production in README.md)"
	@echo "make test   set up and run the whole test suite"
	@echo "make test-fast  the suite without the browser tests"
	@echo "make lint   ruff and mypy"
	@echo "make messages  refresh the translation catalogues"

check-python:
	@if [ -z "$(PYTHON)" ]; then \
	  echo "No Python 3.12 or newer was found (tried python3.13, python3.12, pyenv's versions, python3)."; \
	  echo "Install one, for example 'pyenv install 3.12' or your system's python3.12 package, then run make again."; \
	  exit 1; \
	fi

$(STAMP): requirements.lock pyproject.toml | check-python
	@test -x $(PY) || { echo "Creating $(VENV) with $(PYTHON)"; "$(PYTHON)" -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements.lock
	@touch $(STAMP)

# Node packages some browser tests use (a local OpenID Connect provider, axe-core),
# each pinned by its lock file; installed from the npm registry, never at test time.
NODE_DIRS := $(patsubst %/package-lock.json,%,$(wildcard tests/*/package-lock.json))
NODE_STAMPS := $(addsuffix /node_modules/.installed,$(NODE_DIRS))

tests/%/node_modules/.installed: tests/%/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix tests/$* --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: the browser tests that need tests/$* will be skipped"; fi

setup: $(STAMP)
	@mkdir -p var
	@if command -v msgfmt >/dev/null 2>&1; then \
	  $(PY) manage.py compilemessages --ignore=.venv -v 0; \
	else echo "msgfmt not found: using the committed compiled catalogues"; fi

# The site's address (links in emails, the sign-in address printed by seed_demo, the
# WebAuthn relying party) follows PORT unless SITE_URL is set.
run: export SITE_URL ?= http://localhost:$(PORT)
# The task worker (emails, text messages) runs beside the web server and stops with it.
run: setup
	$(PY) manage.py migrate --no-input -v 0
	$(PY) manage.py seed_demo
	@$(PY) manage.py db_worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(PY) manage.py runserver $(HOST):$(PORT)

# The production server: debug off whatever the environment says, settings checked
# first (portal/preflight.py), gunicorn configured by portal/gunicorn.conf.py (HOST,
# PORT, WEB_CONCURRENCY...), the task worker beside it and stopped with it.
SERVE_ENV = DJANGO_DEBUG=0 HOST=$(HOST) PORT=$(PORT)
serve: setup
	@$(SERVE_ENV) $(PY) -m portal.preflight
	$(SERVE_ENV) $(PY) manage.py migrate --no-input
	$(SERVE_ENV) $(PY) manage.py collectstatic --no-input -v 0
	@$(SERVE_ENV) $(PY) manage.py db_worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(SERVE_ENV) $(PY) -m gunicorn -c portal/gunicorn.conf.py portal.wsgi:application

test: setup $(NODE_STAMPS)
	$(PY) -m pytest $(PYTEST_ARGS)

# The suite without the browser tests.
test-fast: setup
	$(PY) -m pytest -m "not browser" $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy accounts portal

messages: setup
	$(PY) manage.py makemessages -l fr --ignore=.venv --ignore=var --ignore=tests
	$(PY) manage.py makemessages -d djangojs -l fr --ignore=.venv --ignore=var --ignore=tests --ignore=static
	$(PY) manage.py compilemessages --ignore=.venv

clean:
	rm -rf $(VENV) var/test-*
