# Every target runs as root on Debian 12; each does its own setup first.
VENV ?= .venv
PY := $(VENV)/bin/python
SETUP_STAMP := $(VENV)/.sauron-installed

.PHONY: help setup demo test unit test-kernel test-netns test-e2e lint typecheck reference lock pin-images bench bench-service bench-energy bench-energy-isolation bench-publish bench-pfcp doctor clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-22s  %s\n", $$1, $$2}'

setup: ## apt packages, kernel headers, bpffs/tracefs, the virtual environment (idempotent)
	@scripts/setup-host

demo: setup ## the agent on a UPF in namespaces with three slices of traffic, live per-slice numbers
	$(VENV)/bin/sauron demo --duration $${DURATION:-20}

doctor: setup ## what this host offers the agent
	$(VENV)/bin/sauron doctor

unit: ## the tests that need neither root nor the kernel (tests/unit), as any user, in seconds
	$(PY) -m pytest -q tests/unit

test-kernel: setup ## the BPF programs loaded and fed frames and captures (tests/kernel; root)
	$(PY) -m pytest -q tests/kernel

test-netns: setup ## real traffic through namespaces: testbed, UPFs, energy (tests/netns; root)
	$(PY) -m pytest -q tests/netns

test-e2e: setup ## the agent, its API, dashboard, exporters and wheel as a user meets them (tests/e2e; root)
	$(PY) -m pytest -q tests/e2e

lint: setup ## ruff on the Python, clang-format on the C (.clang-format; its compiler warnings are errors in tests/kernel/test_c_warnings.py)
	$(VENV)/bin/ruff check sauron tests bench scripts
	$(VENV)/bin/ruff format --check sauron tests bench scripts
	clang-format --dry-run --Werror $$(git ls-files 'sauron/bpf/c/*.c' 'sauron/bpf/c/*.h')

typecheck: setup ## mypy (strict on sauron/)
	$(VENV)/bin/mypy

lock: ## rewrite requirements.lock (the agent's) and requirements-dev.lock (with the dev tools) from pyproject.toml, with hashes
	$(VENV)/bin/uv pip compile pyproject.toml --quiet --generate-hashes --universal --python-version 3.11 -o requirements.lock
	$(VENV)/bin/uv pip compile pyproject.toml --quiet --extra dev --generate-hashes --universal --python-version 3.11 -o requirements-dev.lock

pin-images: setup ## pin the Dockerfile's base images to the digests their tags have today (needs the registry)
	$(PY) scripts/pin_images.py Dockerfile

reference: setup ## rewrite docs/configuration.md's reference from the configuration's models
	$(VENV)/bin/sauron config reference --readme docs/configuration.md

test: setup lint typecheck ## lint, types and the whole test suite (root, real kernel)
	$(PY) -m pytest -q --durations=15

bench: setup ## every speed figure in one run (per packet, veth throughput, vs capture, footprint, REST, scaling); bench/results.json
	$(PY) -m bench

bench-service: setup ## engine cost per interval vs TEIDs, REST latency per route at 50 clients
	$(PY) -m bench.service

bench-energy: setup ## the energy probe's added cost per context switch
	$(PY) -m bench.energy

bench-energy-isolation: setup ## a slice's joules per packet beside other traffic on the node vs alone (~3 min); bench/energy_isolation_results.json
	$(PY) -m bench.energy_isolation

bench-publish: setup ## InfluxDB publisher: points/s and CPU per point (encode, write, spool)
	$(PY) -m bench.publish

bench-pfcp: setup ## PFCP learner: session events/s (scapy, decode, learn, learn + maps)
	$(PY) -m bench.pfcp

clean: ## remove the virtual environment and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
