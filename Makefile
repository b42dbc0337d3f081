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
PROTOCOL ?= quick@2
DEMO_RUN ?= runs/demo-$(MODEL)-$(subst @,,$(PROTOCOL))

.PHONY: install demo test bench bench-scale clean-venv

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e '.[test]'
	touch $@

# README command 1: prepare the synthetic reference cohort, check it, train and
# evaluate a paper model under the CPU protocol quick@2 (a finished demo run is
# reused), show its results.
demo: install
	$(TB) prepare --preview runs/preview.png
	$(TB) info
	$(TB) verify
	test -f $(DEMO_RUN)/entry.json || { rm -rf $(DEMO_RUN) && $(TB) run --model $(MODEL) --protocol $(PROTOCOL) --out $(DEMO_RUN); }
	$(TB) score $(DEMO_RUN)/predictions/internal.csv --split internal --no-figures
	$(TB) score $(DEMO_RUN)/predictions/external.csv --split external --no-figures
	@echo "run folder (entry, predictions, metrics, report.md, figures, checkpoint): $(DEMO_RUN)"

# README command 2: the test suite (fast, offline).
test: install
	-sh scripts/install-browser.sh   # Chromium for the leaderboard page tests (skipped without it)
	$(VENV)/bin/pytest -q tests

# The performance suites (about 5 minutes on 2 cores): results in benchmarks/results.json,
# summarised as the table BENCHMARKS.md keeps. The scale benchmark is separate: bench-scale.
bench: install
	$(VENV)/bin/pytest -q -s benchmarks --ignore=benchmarks/bench_scale.py --benchmark-only \
	    --benchmark-columns=min,mean,max,rounds --benchmark-json=benchmarks/results.json
	$(PY) benchmarks/summarise.py benchmarks/results.json

# The scale benchmark (issue 13): each stage at 1x and 10x Table 1's counts (TB_SCALE=1,10), wall
# time and peak memory, the table and plot of BENCHMARKS.md "Scale" (about 35 minutes on 2 cores).
bench-scale: install
	TB_SCALE=$${TB_SCALE:-1,10} $(PY) benchmarks/scale.py --benchmarks-md BENCHMARKS.md

clean-venv:
	rm -rf $(VENV)
