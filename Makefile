# The two README commands: `make demo` and `make test`. Both are idempotent.
VENV ?= .venv
PY := $(VENV)/bin/python
S2A := $(VENV)/bin/seq2attn
DEMO := runs/dates-demo

.PHONY: setup demo test lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt torch
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

demo: setup
	bash scripts/demo.sh $(S2A) $(DEMO)

test: setup
	$(VENV)/bin/pytest -q

lint: setup
	$(VENV)/bin/ruff check seq2attn tests benchmarks

clean:
	rm -rf $(VENV) runs
