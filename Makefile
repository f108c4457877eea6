# softmax-bench developer commands. `make test` and `make bench` are the two that matter.
# Everything runs in .venv, created on first use and reinstalled only when pyproject.toml or
# constraints.txt change (the stamp file carries a hash of both).

PYTHON ?= python3.11
VENV := .venv
VPY := $(VENV)/bin/python
PIP := $(VPY) -m pip
CONSTRAINTS := constraints.txt
INSTALL_HASH := $(shell cat pyproject.toml $(CONSTRAINTS) | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(INSTALL_HASH)
STAMP_ALL := $(VENV)/.installed-all-$(INSTALL_HASH)
BENCH_JSON := bench-results/reference.json
# Run directories the HTML report covers (`make bench` sets it to the runs it makes; `make
# report RUN_DIRS="runs/a runs/b"` for any others) and where the report goes.
RUN_DIRS ?=
REPORT_DIR ?= bench-results/report

.PHONY: venv install install-all ensure-browser test lint bench bench-full report clean distclean

venv: $(VPY)

$(VPY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

install: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS) | $(VPY)
	rm -f $(VENV)/.installed-*
	$(PIP) install -e '.[test]' -c $(CONSTRAINTS)
	touch $@

install-all: $(STAMP_ALL)

$(STAMP_ALL): pyproject.toml $(CONSTRAINTS) | $(VPY)
	rm -f $(VENV)/.installed-*
	$(PIP) install -e '.[test,torch,tensorflow,jax,scipy,onnxruntime,ray]' -c $(CONSTRAINTS)
	touch $@ $(STAMP)

# The report's browser tests need chromium: scripts/ensure-browser.sh finds it on PATH, or
# installs Debian's chromium with apt-get when run as root, or else tries Playwright's own
# download; failing all three it stops with one line saying what to install. It prints the
# browser's path, which pytest gets as SOFTMAX_BENCH_CHROMIUM.
ensure-browser: install
	@scripts/ensure-browser.sh $(VPY)

# pytest's exit code 5 (no test collected) is a failure here, like any other non-zero code.
# The harness tests drive every framework, so the test environment has all of them.
test: install-all
	@chromium=$$(scripts/ensure-browser.sh $(VPY)) || exit $$?; \
	SOFTMAX_BENCH_CHROMIUM=$$chromium $(VPY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; \
	exit $$rc
	$(MAKE) --no-print-directory lint

lint: install-all
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# `make bench`: the reference engine's speed, then this machine's runs (the quick suite, and the
# small throughput suite in float32), then one HTML report over them and the committed example
# runs (examples/runs: a GPU run); its last line is the report's path.
BENCH_RUNS := bench-results/runs
EXAMPLE_RUNS := $(sort $(dir $(wildcard examples/runs/*/run.json)))

bench: install-all
	@mkdir -p $(dir $(BENCH_JSON))
	$(VPY) -m pytest benchmarks/ -m benchmark_reference --benchmark-only \
		--benchmark-json=$(BENCH_JSON)
	@echo "Benchmark results: $(abspath $(BENCH_JSON))"
	rm -rf $(BENCH_RUNS)
	$(VENV)/bin/softmax-bench run --suite quick --out $(BENCH_RUNS)/quick --no-report --quiet
	$(VENV)/bin/softmax-bench run --suite examples/suites/throughput-small.toml --dtype float32 \
		--out $(BENCH_RUNS)/throughput --no-report --quiet
	@$(MAKE) --no-print-directory report \
		RUN_DIRS="$(BENCH_RUNS)/quick $(BENCH_RUNS)/throughput $(EXAMPLE_RUNS)"

# `make bench-full`: the full suite on this machine (every built-in, every dtype, forward and
# backward; the README has its measured wall time) and its report.
bench-full: install-all
	rm -rf $(BENCH_RUNS)/full
	$(VENV)/bin/softmax-bench run --suite full --out $(BENCH_RUNS)/full --no-report --quiet
	@$(MAKE) --no-print-directory report RUN_DIRS="$(BENCH_RUNS)/full" \
		REPORT_DIR=bench-results/report-full

# The static HTML report of RUN_DIRS; its last line is the path to open.
report: install
	@if [ -z "$(strip $(RUN_DIRS))" ]; then \
		echo "make report: set RUN_DIRS to one or more run directories" >&2; exit 2; fi
	$(VENV)/bin/softmax-bench report $(RUN_DIRS) --out $(REPORT_DIR)
	@echo "Report: $(abspath $(REPORT_DIR))/index.html"

# Build outputs and caches; the virtual environment stays (`make distclean` removes it too).
clean:
	rm -rf bench-results .pytest_cache .benchmarks .mypy_cache .ruff_cache .hypothesis \
		build dist *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
