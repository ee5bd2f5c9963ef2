# luatorch_port: `make demo` (set-up + the whole report on the embedded sample data), `make test`.
PYTHON ?= python3
TORCH_PIN := torch==2.13.0

ifdef VIRTUAL_ENV
  PY := python
  STAMP := $(VIRTUAL_ENV)/.luatorch_port-installed
else
  PY := .venv/bin/python
  STAMP := .venv/.luatorch_port-installed
endif
A2 := $(PY) -m luatorch_port

.PHONY: install test test-fast demo bench bench-accuracy clean

install: $(STAMP)

# torch is pinned and installed first: an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): setup.cfg pyproject.toml
ifndef VIRTUAL_ENV
	test -x .venv/bin/python || $(PYTHON) -m venv .venv
endif
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH_PIN)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# The whole suite; at the end one PASS/FAIL line per report section and layer (tests/sections.py),
# and a non-zero exit status if anything failed.
test: install
	$(PY) -m pytest -q tests

# The edit-test loop: everything but the end-to-end tests marked slow.
test-fast: install
	$(PY) -m pytest -q -m "not slow" tests

demo: install
	$(A2) data sample data/sample
	$(A2) report data/sample --out report --budget quick

bench: install
	@for f in benchmarks/bench_*.py; do \
	  case $$f in *bench_accuracy.py|*bench_surrogate_accuracy.py) continue;; esac; \
	  echo "== $$f"; $(PY) $$f || exit 1; done

# The report's methods on photographs at the standard budget (about an hour on 2 cores):
# bench-out/accuracy.json. Resumes an interrupted run.
bench-accuracy: install
	$(PY) benchmarks/bench_accuracy.py

clean:
	rm -rf build dist *.egg-info .pytest_cache .hypothesis report bench-out
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
