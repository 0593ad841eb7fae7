# Two set-up commands, each doing all of its own set-up (CONTRACT section 1).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo_output

.PHONY: demo run-demo test lint install browser screenshots benchmarks lock container-check slurm-check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Dependencies come from the lock files, the same pins the Docker image installs.
$(VENV)/.installed: $(BIN)/python pyproject.toml requirements.lock requirements-test.lock
	$(BIN)/python -m pip install --quiet -r requirements-test.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	touch $@

install: $(VENV)/.installed

# Build the embedded demo dataset (made on the fly), then run participant and group level on it: on the fMRIPrep
# part a one-sample test (the PCC seed map's planted default-mode nodes survive voxel-wise FWE, the motor blobs of
# lf - rf cluster-wise FWE) and the two-sample control vs patient test (the planted weaker default-mode coupling).
# run-demo alone takes the commands from DEMO_PYTHON and DEMO_BIDSAPP (container/check.sh runs it in Docker).
DEMO_PYTHON ?= $(BIN)/python
DEMO_BIDSAPP ?= $(BIN)/bidsapp

demo: install run-demo

run-demo:
	rm -rf $(DEMO_DIR)/data $(DEMO_DIR)/results $(DEMO_DIR)/work
	$(DEMO_PYTHON) -m bidsapp.demo $(DEMO_DIR)/data
	$(DEMO_BIDSAPP) $(DEMO_DIR)/data/bids $(DEMO_DIR)/results/fmriprep participant -w $(DEMO_DIR)/work \
		--atlas $(DEMO_DIR)/data/atlas/atlas-DemoNetworks_dseg.nii.gz --seeds PCC=0,-52,26
	$(DEMO_BIDSAPP) $(DEMO_DIR)/data/bids $(DEMO_DIR)/results/fmriprep group -w $(DEMO_DIR)/work \
		--correction fdr fwe cluster --n-perm 1000
	$(DEMO_BIDSAPP) $(DEMO_DIR)/data/bids $(DEMO_DIR)/results/fmriprep group -w $(DEMO_DIR)/work \
		--group-test twosample --group-column group --correction fdr fwe --n-perm 1000
	$(DEMO_BIDSAPP) $(DEMO_DIR)/data/hcp $(DEMO_DIR)/results/hcp participant -w $(DEMO_DIR)/work
	$(DEMO_BIDSAPP) $(DEMO_DIR)/data/hcp $(DEMO_DIR)/results/hcp group -w $(DEMO_DIR)/work \
		--correction fdr fwe --n-perm 1000
	@echo "Demo results: $(abspath $(DEMO_DIR))/results"
	@echo "Group reports: $(abspath $(DEMO_DIR))/results/fmriprep/group/desc-onesample_report.html" \
		"$(abspath $(DEMO_DIR))/results/fmriprep/group/desc-twosampleGroup_report.html" \
		"$(abspath $(DEMO_DIR))/results/hcp/group/desc-onesample_report.html"

# Install the test dependencies, lint and type-check the package, then run the whole suite (slow end-to-end tests
# included): a lint or type error fails the target before any test runs.
test: install lint browser
	$(BIN)/python -m pytest -ra

# Headless Chromium and its WebDriver from Debian's packages, installed when missing: the report tests
# (tests/reports/test_browser.py) and make screenshots drive them. Test-only: the Docker image has neither.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		echo "installing chromium and chromium-driver"; \
		timeout 600 apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq chromium chromium-driver > /dev/null; \
	fi

# One screenshot per report type (participant and group, fMRIPrep and HCP) of a demo run, into docs/images/.
screenshots: demo browser
	$(BIN)/python docs/screenshots.py $(DEMO_DIR)/results docs/images

# Lint (ruff: pycodestyle, pyflakes, import order, numpy docstrings, pyupgrade, bugbear) and type-check (mypy) the
# package; both are configured in pyproject.toml.
lint: install
	$(BIN)/ruff check bidsapp
	$(BIN)/mypy bidsapp

benchmarks: install
	for script in benchmarks/*.py; do $(BIN)/python $$script || exit 1; done

# Re-pin requirements.lock (runtime) and requirements-test.lock (test extras) from pyproject.toml.
lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/pip install --quiet .
	{ head -n 1 requirements.lock; .lockvenv/bin/pip freeze --exclude bidsapp; } > requirements.lock.new
	.lockvenv/bin/pip install --quiet '.[test]'
	{ head -n 2 requirements-test.lock; .lockvenv/bin/pip freeze --exclude bidsapp | grep -vxFf requirements.lock.new; } \
		> requirements-test.lock.new
	mv requirements.lock.new requirements.lock && mv requirements-test.lock.new requirements-test.lock
	rm -rf .lockvenv

# Build the Docker image on a Docker engine this target starts itself, run the demo in it as Singularity would
# (any UID, read-only image, tmpfs /tmp), then stop that engine (container/check.sh).
container-check:
	bash container/check.sh

# Start a single-node SLURM cluster of its own (installing slurm-wlm and munge if missing), run the demo through the
# dry run's job scripts (--slurm-script) as a job array and a dependent group job, compare the outputs with a run
# without SLURM, cancel and resubmit one task, and stop every daemon it started (container/slurm/check.sh).
slurm-check: install
	bash container/slurm/check.sh

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
