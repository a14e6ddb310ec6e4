# The two commands of the README: `make demo` and `make test`. Both create .venv and install into it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0

.PHONY: install demo test lint bench clean chromium

$(BIN)/anomalia: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU build of torch that lies on this machine; the package itself accepts torch>=2.4.
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BIN)/anomalia

install: $(BIN)/anomalia

demo: install
	$(BIN)/anomalia demo

# Debian's Chromium for the report's browser test (tests/test_report_browser.py), driven by Playwright
# from .venv; installed only when missing (CI runs as root). Playwright's own browser download is not used.
chromium:
	@test -x /usr/bin/chromium || (apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)

test: install chromium
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

bench: install
	$(BIN)/pip install -q '.[bench]'

clean:
	rm -rf $(VENV) build *.egg-info
