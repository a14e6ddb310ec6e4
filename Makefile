# The two commands of the README: `make demo` and `make test`. Both create .venv and install into it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0

.PHONY: install demo test lint bench clean system

$(BIN)/anomalia: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU build of torch that lies on this machine; the package itself accepts torch>=2.4.
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[all,dev]'
	touch $(BIN)/anomalia

install: $(BIN)/anomalia

demo: install
	$(BIN)/anomalia demo

# The real servers and programs the tests start themselves, from Debian's packages, installed only when
# missing (CI runs as root): Chromium for the browser tests (driven by Playwright from .venv; Playwright's
# own browser download is not used), PostgreSQL (the tests run initdb in a temporary folder), redis-server,
# and Java for Spark.
SYSTEM_PACKAGES := chromium postgresql redis-server openjdk-17-jre-headless
system:
	@test -x /usr/bin/chromium && test -x /usr/bin/redis-server && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
		&& command -v java >/dev/null || (apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(SYSTEM_PACKAGES))

test: install system
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

bench: install
	$(BIN)/pip install -q '.[bench]'

clean:
	rm -rf $(VENV) build *.egg-info
