# The two set-up commands. Both work on a fresh machine with only Python 3.11.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: serve test

# Install the serving stack (no PyTorch) and run the web app on the embedded model.
serve: $(VENV)/.serve-installed
	$(VENV)/bin/melascan serve --host $(HOST) --port $(PORT)

# Install everything the tests need (train + dev extras) and the Debian packages they drive
# for real: chromium (browser tests), postgresql (a private cluster that tests/conftest.py
# starts and deletes), nginx (the slow-client front) and poppler-utils (pdftotext reads the
# PDF reports back). Where apt cannot install them,
# the tests that need them are skipped with a message saying so.
test: $(VENV)/.test-installed
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	command -v pdftotext >/dev/null 2>&1 || missing="$$missing poppler-utils"; \
	if [ -n "$$missing" ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) \
	    || echo "make test: could not install$$missing; the tests that need them will be skipped"; \
	fi
	$(PY) -m pytest

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.serve-installed: $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install -q -e ".[train,dev]"
	touch $@ $(VENV)/.serve-installed
