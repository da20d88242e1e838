# The two commands of the README: `make demo` and `make test`. Each bootstraps .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint browser bench clean

# The replay's compiled block reader (native/, Rust, docs/replay.md#speed) is built into the venv when cargo is
# found, on the PATH or where rustup puts it; without it the loader reads the same columns in pure Python, slower.
CARGO := $(or $(shell command -v cargo 2>/dev/null),$(wildcard $(HOME)/.cargo/bin/cargo))

$(STAMP): pyproject.toml native/pyproject.toml native/Cargo.toml native/Cargo.lock native/src/lib.rs
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	@if [ -n "$(CARGO)" ]; then \
	  echo "building the compiled block reader (native/) with $(CARGO)"; \
	  PATH="$(dir $(CARGO)):$$PATH" $(BIN)/python -m pip install -q ./native || \
	  echo "the compiled reader did not build (above): the replay loads logs the pure-Python way; 'make clean' to retry"; \
	else echo "no cargo: the replay loads logs without its compiled reader (install Rust: https://rustup.rs)"; fi
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/orderbank demo

# mypy cannot follow setuptools' editable finder, so it reads the folders through links under their installed names.
TYPING := .cache/typing/orderbank

lint: $(STAMP)
	mkdir -p $(TYPING)
	for d in engine projections replay; do ln -sfn ../../../$$d $(TYPING)/$$d; done
	$(BIN)/ruff check .
	$(BIN)/mypy

# The page tests drive the system's Chromium (Debian's chromium and chromium-driver, no download of a browser of
# their own): installed here when missing and running as root, as CI does; otherwise make says what to run.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q chromium chromium-driver; \
	  else echo "the page tests need Chromium: run 'sudo apt-get update && sudo apt-get install -y chromium chromium-driver'" >&2; \
	  exit 1; fi; \
	fi

test: lint browser
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .cache report native/target
