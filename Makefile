# Two set-up commands, each doing all of its own set-up (CONTRACT section 1).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo_output

.PHONY: demo test install benchmarks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

# Build the embedded demo dataset (made on the fly), then run participant and group level on it.
demo: install
	rm -rf $(DEMO_DIR)
	$(BIN)/python -m bidsapp.demo $(DEMO_DIR)/data
	$(BIN)/bidsapp $(DEMO_DIR)/data/bids $(DEMO_DIR)/results/fmriprep participant -w $(DEMO_DIR)/work \
		--atlas $(DEMO_DIR)/data/atlas/atlas-DemoNetworks_dseg.nii.gz --seeds PCC=0,-52,26
	$(BIN)/bidsapp $(DEMO_DIR)/data/bids $(DEMO_DIR)/results/fmriprep group -w $(DEMO_DIR)/work \
		--group-test twosample --group-column group --correction fdr fwe --n-perm 1000
	$(BIN)/bidsapp $(DEMO_DIR)/data/hcp $(DEMO_DIR)/results/hcp participant -w $(DEMO_DIR)/work
	$(BIN)/bidsapp $(DEMO_DIR)/data/hcp $(DEMO_DIR)/results/hcp group -w $(DEMO_DIR)/work \
		--correction fdr fwe --n-perm 1000
	@echo "Demo results: $(CURDIR)/$(DEMO_DIR)/results"
	@echo "Group reports: $(CURDIR)/$(DEMO_DIR)/results/fmriprep/group/desc-summary_report.html $(CURDIR)/$(DEMO_DIR)/results/hcp/group/desc-summary_report.html"

# Install the test dependencies and run the whole suite (slow end-to-end tests included).
test: install
	$(BIN)/python -m pytest -ra

benchmarks: install
	for script in benchmarks/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
