# The two set-up commands of the README. Each creates .venv on a fresh machine and installs
# what it needs; later runs reuse it (reinstalling when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: search test lint clean-venv

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "nas needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

# The main job: the default search and its confirmation (about 19 minutes on 2 cores, 3-5 more the first time;
# re-running resumes it with new trials).
# Without data (no $$NAS_DATA_DIR, no data/fsdd/recordings) it downloads FSDD first.
search: $(STAMP)
	@if [ -z "$$NAS_DATA_DIR" ] && [ ! -d data/fsdd/recordings ]; then $(VENV)/bin/nas data download; fi
	$(VENV)/bin/nas search --budget-kb 36 --weights pow2

test: $(STAMP)
	$(VENV)/bin/ruff check nas tests bench
	$(VENV)/bin/lint-imports
	$(VENV)/bin/python -m pytest

clean-venv:
	rm -rf $(VENV)
