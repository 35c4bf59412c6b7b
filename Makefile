# The two commands a fresh machine needs are `make serve` (later: the server)
# and `make test`. Each installs what it needs first, so either works alone.
PYTHON ?= python3

.PHONY: setup build test bench

setup:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e ".[test]"

build: setup
	fluxworld build

test: build
	$(PYTHON) -m pytest -q

bench: build
	fluxworld bench reducers --entities 10000 --entities 100000 --json
