# stemlab: one command to set up and run the demo DAG (`make run`), one to set up and test (`make test`).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# fluidsynth + the Debian soundfonts: the synth engine and its soundfont pool; graphviz: the rule-graph figure;
# latexmk + TeX Live base/recommended: the paper (~170 MB with graphviz)
APT_RUN := fluidsynth libfluidsynth3 fluid-soundfont-gm musescore-general-soundfont timgm6mb-soundfont graphviz \
	latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended
# chromium: the report test opens the report in a headless browser
APT_TEST := slurmctld slurmd slurm-client munge chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP := $(VENV)/.stamp-$(shell cat requirements.txt pyproject.toml | sha256sum | cut -c1-12)

.PHONY: setup setup-test system system-test venv run test test-fast bench lint fmt clean-results

## setup: Debian packages the workflow needs + .venv from pinned requirements (re-running is a no-op)
setup: system venv

setup-test: setup system-test

# install the Debian packages of a list that are missing (a no-op when all are there)
define apt_install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

system:
	$(call apt_install,$(APT_RUN))

system-test:
	$(call apt_install,$(APT_TEST))

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip==26.3
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.stamp-*
	touch $@

## run: set up, then the whole demo DAG on this machine and its report (results/report.zip)
run: setup
	$(PY) -m snakemake --profile profiles/local all
	$(PY) -m snakemake --profile profiles/local --report results/report.zip

## test: set up (incl. SLURM packages), then the full test suite
test: setup-test
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow and not slurm"

## bench: benchmark scripts (each prints the ratio it measures)
bench: setup
	$(PY) scripts/bench/parse_cost.py

lint: setup
	$(PY) -m snakemake --lint --configfile config/smoke.yaml
	$(VENV)/bin/snakefmt --check .

fmt: setup
	$(VENV)/bin/snakefmt .

clean-results:
	rm -rf results/*/ .snakemake/
