# Two commands: `make run` starts the whole system, `make test` runs the whole suite.
# Both create the virtualenv and install what is needed first.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test lint format migrate bench clean

$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --editable '.[dev]'
	touch $(INSTALLED)

migrate: $(INSTALLED)
	$(PY) manage.py migrate --noinput

run: migrate
	$(PY) manage.py setupdemo
	$(PY) manage.py runmail

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(INSTALLED)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: $(INSTALLED) lint
	bash scripts/install-test-deps.sh
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

# The performance figures (bench/all.py): on a scratch PostgreSQL database, mailsite_bench unless DATABASE_URL
# names another. BENCH_ARGS may add --quick, or --postfix / --dovecot-imap / --dovecot-pop3 HOST:PORT to compare.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/mailsite_bench
BENCH_ARGS ?=
bench: $(INSTALLED)
	test -n "$$DATABASE_URL" || createdb -h 127.0.0.1 -U postgres mailsite_bench 2>/dev/null || true
	DATABASE_URL=$${DATABASE_URL:-$(BENCH_DATABASE_URL)} $(PY) bench/all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var
