# The README's two commands:  `make demo`  and  `make test`.
# Both create the virtual environment .venv on first use (torch from this machine's
# pip index, then the package with its test extra), so a fresh clone needs nothing else.

VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
TB     := $(VENV)/bin/thyroid-bench
# torch 2.14.1 + torchvision 0.29.1 are the pair this machine's pip index serves offline.
TORCH  ?= torch==2.14.1 torchvision==0.29.1
MODEL  ?= densenet169
DEMO_RUN ?= runs/demo-$(MODEL)

.PHONY: install demo test bench clean-venv

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e '.[test]'
	touch $@

# README command 1: prepare the synthetic reference cohort, check it, train and
# evaluate a paper model under the CPU-friendly protocol (a finished demo run is
# reused), show its results.
demo: install
	$(TB) prepare --preview runs/preview.png
	$(TB) info
	$(TB) verify
	test -f $(DEMO_RUN)/entry.json || { rm -rf $(DEMO_RUN) && $(TB) run --model $(MODEL) --out $(DEMO_RUN); }
	$(TB) score $(DEMO_RUN)/predictions/internal.csv --split internal --no-figures
	$(TB) score $(DEMO_RUN)/predictions/external.csv --split external --no-figures
	@echo "run folder (entry, predictions, metrics, report.md, figures, checkpoint): $(DEMO_RUN)"

# README command 2: the test suite (fast, offline).
test: install
	-sh scripts/install-browser.sh   # Chromium for the leaderboard page tests (skipped without it)
	$(VENV)/bin/pytest -q tests

# The performance suites (about 5 minutes on 2 cores): results in benchmarks/results.json,
# summarised as the table BENCHMARKS.md keeps.
bench: install
	$(VENV)/bin/pytest -q -s benchmarks --benchmark-only --benchmark-columns=min,mean,max,rounds \
	    --benchmark-json=benchmarks/results.json
	$(PY) benchmarks/summarise.py benchmarks/results.json

clean-venv:
	rm -rf $(VENV)
