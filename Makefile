# seg_uda developer entry points. `make test` and `make demo` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install lint test test-fast demo clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# ruff (pycodestyle + pyflakes, line length 120; settings in pyproject.toml)
lint: $(STAMP)
	$(PY) -m ruff check seg_uda tools bench tests

test: $(STAMP) lint
	$(PY) -m pytest -q

# Everything but the tests marked slow (subprocesses, torchrun, longer training runs): 1-2 minutes on 2 cores (534 of the 591 tests).
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# The main job on the embedded benchmark: generate SynthCity, train source-only and
# MinEnt with the class-ratio prior side by side, print both mIoUs and the gain, write the HTML report
# (seg_uda/cli/demo.py). `make demo METHOD=self_training` trains the method that gains on SynthCity instead.
demo: $(STAMP)
	$(VENV)/bin/seg-uda-demo $(if $(METHOD),--method $(METHOD))

clean:
	rm -rf $(VENV) *.egg-info
