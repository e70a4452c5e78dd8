# Set-up and everyday commands. `make demo` and `make test` work on a fresh machine
# with only Python 3.11 and pip: they create .venv and install into it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SHARED ?= ../shared
STAMP  := $(VENV)/.installed

.PHONY: demo test eval eval-real bench bench-fetch bench-extract schemas clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m extractor demo

test: $(STAMP)
	$(PY) -m pytest

eval: $(STAMP)
	$(PY) -m extractor.evaluate $(SHARED)/corpus

eval-real: $(STAMP)
	$(PY) -m extractor.evaluate --real $(SHARED)/corpus/real.xml.gz

bench: $(STAMP)
	$(PY) bench/bench_ingest.py --shared $(SHARED)

bench-fetch: $(STAMP)
	$(PY) bench/bench_fetch.py

bench-extract: $(STAMP)
	$(PY) bench/bench_extract.py --shared $(SHARED)

schemas: $(STAMP)
	$(PY) -m extractor.schemas

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
