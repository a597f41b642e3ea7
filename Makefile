# Local LLM Lab. Every target installs what it needs into .venv on first use.
#   make course   run every lesson headlessly -> build/course/ (report.md, executed notebooks)
#   make test     run the whole test suite (what CI runs)
#   make lab      open JupyterLab on the course
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.course-installed

# Nothing may be downloaded at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export ANONYMIZED_TELEMETRY := False

.PHONY: setup course test lab doctor lint notebooks clean site

setup: $(STAMP)

$(STAMP): pyproject.toml tools/install.sh
	bash tools/install.sh $(VENV)
	@touch $@

course: setup
	$(VENV)/bin/course run

test: setup
	$(PY) -m pytest

lab: setup
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 --notebook-dir=.

doctor: setup
	$(VENV)/bin/course doctor

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks notebooks labs

# Re-execute the lessons and labs in place, storing outputs (for authors, after editing a notebook).
notebooks: setup
	$(VENV)/bin/course run --in-place --all

# The course website -> build/site/index.html: the lessons as executed by `make course` (build/course/), else
# with their stored outputs; labs, solutions, one page per course_utils module. Builds offline.
site: setup
	$(PY) site/build.py

clean:
	rm -rf build .pytest_cache
