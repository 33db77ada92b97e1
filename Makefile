# certwatch: `make run` starts everything locally, `make test` runs the test suite.
# Both install what they need (Debian packages, a venv at .venv) on a fresh Debian machine.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROTO_OUT := services/certwatch/v1
PROTOS := $(wildcard protos/certwatch/v1/*.proto)
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: run test check lint format bench deps bench-deps venv proto clean

run: deps venv proto
	$(VENV)/bin/certwatch stack

test: deps venv proto
	$(PY) -m pytest -q -p no:cacheprovider

check: venv proto
	$(VENV)/bin/ruff check services tests bench
	$(VENV)/bin/ruff format --check services tests bench
	$(VENV)/bin/mypy services/certwatch
	$(VENV)/bin/lint-imports

format: venv
	$(VENV)/bin/ruff check --fix services tests bench
	$(VENV)/bin/ruff format services tests bench

bench: deps bench-deps venv proto
	$(PY) -m bench

# The benchmarks' reference: blackbox_exporter (nginx, the TLS target, comes with deps).
bench-deps:
	@missing=""; \
	[ -x /usr/bin/prometheus-blackbox-exporter ] || missing="$$missing prometheus-blackbox-exporter"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

# System packages: PostgreSQL and NATS server binaries (run as local child processes),
# nginx, which tests use as a real TLS server that staples OCSP responses; pebble (with
# pebble-challtestsrv), the ACME test CA the hosting tests issue from; bind9, the DNS server
# the RFC 2136 (dns-01) provider is tested against; prometheus for promtool (the chart's
# alert rules are checked and unit-tested with it). Reports: CJK fonts for WeasyPrint and
# HarfBuzz's subsetter (without it one CJK PDF takes 13 s, not 0.6 s); poppler-utils reads
# PDFs back in tests; chromium is the console tests' browser.
deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	{ [ -x /usr/sbin/nats-server ] || command -v nats-server >/dev/null; } || missing="$$missing nats-server"; \
	$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	[ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	[ -x /usr/bin/pebble ] || missing="$$missing pebble"; \
	[ -x /usr/sbin/named ] || missing="$$missing bind9"; \
	[ -d /usr/share/fonts/opentype/noto ] || missing="$$missing fonts-noto-cjk"; \
	ls /usr/lib/*/libharfbuzz-subset.so.0 >/dev/null 2>&1 || missing="$$missing libharfbuzz-subset0"; \
	command -v pdftotext >/dev/null || missing="$$missing poppler-utils"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -x /usr/bin/promtool ] || missing="$$missing prometheus"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing openssl ca-certificates >/dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

proto: venv $(PROTO_OUT)/.generated

$(PROTO_OUT)/.generated: $(PROTOS) $(VENV)/.installed
	mkdir -p $(PROTO_OUT)
	$(PY) -m grpc_tools.protoc -Iprotos \
		-I$$($(PY) -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))') \
		--python_out=services --grpc_python_out=services --pyi_out=services $(PROTOS)
	touch $@

clean:
	rm -rf $(VENV) $(PROTO_OUT) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
