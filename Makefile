# The two README commands: `make demo` and `make test`. Both are idempotent.
VENV ?= .venv
PY := $(VENV)/bin/python
S2A := $(VENV)/bin/seq2attn
DEMO := runs/dates-demo
DEMO_DATA := data/dates
DEMO_MINUTES ?= 2

.PHONY: setup demo test test-lowest lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt torch
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

# Train GRU + Bahdanau attention on the built-in dates corpus, translate the held-out test split,
# score it and show one attention heatmap. The model directory is the demo's own: rebuilt each run.
demo: setup
	$(S2A) corpora prepare dates --out $(DEMO_DATA) > /dev/null
	rm -rf $(DEMO)
	$(S2A) train --corpus dates --out $(DEMO) --set train.max_minutes=$(DEMO_MINUTES)
	$(S2A) translate -m $(DEMO) -i $(DEMO_DATA)/test.src -o $(DEMO)/test.hyp
	@echo "--- a few held-out examples (source | translation | reference)"
	@paste -d '|' $(DEMO_DATA)/test.src $(DEMO)/test.hyp $(DEMO_DATA)/test.tgt | head -n 8 | sed 's/|/  |  /g'
	@echo "--- test split scores"
	$(S2A) score $(DEMO)/test.hyp $(DEMO_DATA)/test.tgt --metrics bleu,chrf,exact
	$(S2A) align -m $(DEMO) "Saturday 21 November 2026"

# one pytest-xdist worker per core (each runs torch on one thread: see tests/conftest.py); TEST_JOBS=0 runs
# the suite in this process
TEST_JOBS ?= auto
test: setup
	$(VENV)/bin/pytest -q -n $(TEST_JOBS) --maxprocesses 8

# The lowest versions pyproject.toml allows (constraints-lowest.txt), in their own venv: a supported
# install must import and run. torch stays at this machine's CPU wheel (see constraints-lowest.txt).
test-lowest:
	python3 -m venv .venv-lowest
	.venv-lowest/bin/python -m pip install -q -c constraints-lowest.txt -e . pytest hypothesis
	.venv-lowest/bin/python -m pytest -q -p no:cacheprovider tests/test_cli_conventions.py tests/test_cli_translate.py \
		tests/test_store.py tests/test_tokenizer.py

lint: setup
	$(VENV)/bin/ruff check seq2attn tests benchmarks

clean:
	rm -rf $(VENV) .venv-lowest runs
