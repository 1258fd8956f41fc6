# The two commands a newcomer needs: `make run` and `make test`. Nothing else is installed by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synced
HOST ?= 127.0.0.1
PORT ?= 8000
# pytest-xdist worker processes for `make pytest` (auto: one per core); each has its own test
# databases. PYTEST_WORKERS=0 runs the suite in one process.
PYTEST_WORKERS ?= auto

.PHONY: install run test test-ai lint check pytest clean-venv sbom

$(BIN)/uv: requirements/bootstrap.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
	  { echo "Python 3.11 is required (found $$($(PYTHON) --version)); set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements/bootstrap.txt
	@touch $@

# Installs exactly what uv.lock pins (hash-checked), nothing more. Compiled to bytecode at install:
# otherwise a command compiles the libraries on each run where bytecode cannot be written
# (PYTHONDONTWRITEBYTECODE, a read-only environment), 3 s of a 5 s start (docs/benchmarks.md).
$(STAMP): $(BIN)/uv pyproject.toml uv.lock
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --frozen --compile-bytecode --python $(BIN)/python --quiet
	@touch $@

install: $(STAMP)

run: $(STAMP)
	DJANGO_SETTINGS_MODULE=governance.settings.local $(BIN)/python manage.py migrate --no-input
	DJANGO_SETTINGS_MODULE=governance.settings.local $(BIN)/python manage.py migrate --no-input --database secrets
	DJANGO_SETTINGS_MODULE=governance.settings.local $(BIN)/python manage.py seed_demo
	@echo "Serving on http://$(HOST):$(PORT)/  —  sign in at http://$(HOST):$(PORT)/accounts/login/ (control panel: /admin/)"
	DJANGO_SETTINGS_MODULE=governance.settings.local $(BIN)/python scripts/quickstart.py --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports  # the floors of docs/architecture.md (contracts in pyproject.toml)

check: $(STAMP)
	source scripts/test-database.sh && \
	  DJANGO_SETTINGS_MODULE=governance.settings.test $(BIN)/python manage.py check --fail-level WARNING && \
	  SECRETS_DATABASE_URL="$$DATABASE_URL" DJANGO_SETTINGS_MODULE=governance.settings.test \
	    $(BIN)/python manage.py makemigrations --check --dry-run  # reads migration history only: one existing database serves both aliases

pytest: $(STAMP)
	bash scripts/ensure-debian-package.sh chromium chromium "the browser journeys"
	bash scripts/ensure-debian-package.sh softhsm2 /usr/lib/softhsm/libsofthsm2.so "the HSM tests"
	bash scripts/ensure-debian-package.sh xmlsec1 xmlsec1 "the SAML identity provider of the SSO tests"
	bash scripts/ensure-debian-package.sh graphviz dot "the workflow graphs"
	bash scripts/ensure-debian-package.sh redis-server redis-server "the execution fault tests and bench/executions.py"
	bash scripts/ensure-debian-package.sh fonts-dejavu-core /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf "the PDF summary test of other scripts"
	bash scripts/ensure-debian-package.sh rsyslog rsyslogd "the SIEM syslog tests (a real rsyslog receiver)"
	bash scripts/ensure-debian-package.sh rsyslog-openssl /usr/share/doc/rsyslog-openssl "the SIEM syslog tests (rsyslog's TLS driver)"
	bash scripts/ensure-node-deps.sh
	bash scripts/ensure-local-model.sh --if-cached
	source scripts/test-database.sh && $(BIN)/pytest -n $(PYTEST_WORKERS) --maxprocesses=14 $(PYTEST_ARGS)

# The AI steps against the real local model (SmolLM2-135M through llama-cpp-python's server): builds
# the server once (about 8 minutes on 2 cores, then cached) and runs those tests. `make test` runs
# them too whenever the build is cached.
test-ai: $(STAMP)
	bash scripts/ensure-local-model.sh --build
	source scripts/test-database.sh && $(BIN)/pytest -m local_model $(PYTEST_ARGS)

test: lint check pytest

sbom: $(STAMP)
	mkdir -p var && $(BIN)/uv export --frozen --no-dev --preview-features sbom-export --format cyclonedx1.5 > var/sbom.cdx.json || \
	  { echo "sbom: this uv cannot export CycloneDX"; exit 1; }

clean-venv:
	rm -rf $(VENV)
