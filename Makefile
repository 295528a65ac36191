# ess-bot — the two commands of the README, and a few more.
#   make run    installs what is needed, then starts the bot (Matrix if config.toml exists, else the terminal)
#   make test   installs what is needed (Synapse included), starts the servers the tests need, runs them
#   make bench  measures the bot against a minimal echo bot on a local Synapse (not part of make test)
#   make fuzz   100,000 fuzzed command lines through the real dispatcher: 0 internal errors (not part of make test)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run console test test-unit bench fuzz check-config clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11+ est nécessaire ($(PYTHON) introuvable)."; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 ou plus récent est nécessaire.")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,postgres]"
	@touch $(STAMP)

install: $(STAMP)
	@# bytecode ahead of time (an editable install has none, and PYTHONDONTWRITEBYTECODE may be set): faster starts
	@$(BIN)/python -m compileall -q ess_bot commands bench >/dev/null

run: install
	@if [ -f config.toml ]; then \
		echo "config.toml trouvé : démarrage du bot sur Matrix."; \
		$(BIN)/ess-bot run -c config.toml; \
	else \
		echo "Pas de config.toml : démarrage en mode terminal avec la configuration d'exemple."; \
		$(BIN)/ess-bot console; \
	fi

console: install
	$(BIN)/ess-bot console

test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-unit: install
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

fuzz: install
	$(BIN)/python -m bench.fuzz $(FUZZ_ARGS)

check-config: install
	$(BIN)/ess-bot check-config -c config.toml

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
