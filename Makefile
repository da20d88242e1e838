# The two commands of the README: `make demo` and `make test`. Each bootstraps .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint browser bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
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
	rm -rf $(VENV) .cache report
