# The two commands a fresh machine needs are `make serve` (set-up, then the server)
# and `make test`. Each installs what it needs first, so either works alone.
PYTHON ?= python3

.PHONY: system setup build test bench serve

# Debian packages, when missing: Node.js and npm build the reducers; `serve`
# runs a private Prosody for the players (and the tests run a real one), with
# jemalloc as its allocator (pipeline/xmpp/prosody.py says why);
# go-sendxmpp is a chat client we did not write, for the tests.
system:
	@need=""; \
	command -v node >/dev/null 2>&1 || need="$$need nodejs"; \
	command -v npm >/dev/null 2>&1 || need="$$need npm"; \
	command -v prosody >/dev/null 2>&1 || need="$$need prosody"; \
	ls /usr/lib/*/libjemalloc.so.2 >/dev/null 2>&1 || need="$$need libjemalloc2"; \
	command -v go-sendxmpp >/dev/null 2>&1 || need="$$need go-sendxmpp"; \
	command -v chromium >/dev/null 2>&1 || need="$$need chromium"; \
	if [ -n "$$need" ]; then \
		echo "apt-get install$$need"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need; \
	fi

setup:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e ".[test]"

build: system setup
	fluxworld build

serve: build
	fluxworld serve

test: build
	$(PYTHON) -m pytest -q

bench: build
	fluxworld bench reducers --entities 10000 --entities 100000 --json
