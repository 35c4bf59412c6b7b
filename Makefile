# The two commands a fresh machine needs are `make serve` (set-up, then the server)
# and `make test`. Each installs what it needs first, so either works alone.
PYTHON ?= python3

.PHONY: setup build test bench prosody serve

setup:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e ".[test]"

build: setup
	fluxworld build

# Debian's prosody, when missing: `serve` runs a private one for the players.
prosody:
	command -v prosody >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prosody; }

serve: build prosody
	fluxworld serve

test: build prosody
	$(PYTHON) -m pytest -q

bench: build
	fluxworld bench reducers --entities 10000 --entities 100000 --json
