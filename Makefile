# Developer entry points. `make test` is the README's test command and what CI runs.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: help venv up test lint doctor buildx
help:
	@echo "make up      install lab into .venv, fetch its pinned tools, bring the lab up"
	@echo "make test    install everything into .venv and run every test suite"
	@echo "make lint    ruff and mypy on the lab package"
	@echo "make doctor  check this machine can run the lab"
	@echo "make buildx  build the docker buildx plugin when the docker CLI lacks it"

venv: $(STAMP)
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.lock
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

lint: venv
	$(VENV)/bin/ruff check lab tests tasks.py
	$(VENV)/bin/mypy

test: venv
	@scripts/test-suites.sh

# Day one: lab itself, the buildx plugin if Docker lacks it, then kind/istioctl/kubectl/
# kustomize (skipped when present), then the lab. Re-running resumes;
# `.venv/bin/invoke lab.down` removes it all.
up: venv buildx
	$(VENV)/bin/invoke lab.tools
	$(VENV)/bin/invoke lab.up

doctor: venv
	$(VENV)/bin/invoke lab.doctor

# Every image is built with BuildKit through `docker buildx`; Docker Desktop and docker-ce
# ship it, Debian 12's docker.io does not (this builds it from its Go module, once).
buildx:
	@bash scripts/buildx.sh
