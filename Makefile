# One-command setup for a fresh machine (Debian/Ubuntu with Python 3.11 and npm).
#   make run   install everything, build the demo city, open the dashboard
#   make test  install everything (with Chromium for the browser tests), run the whole test suite

PY      ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
BIN     := $(VENV)/bin
VENDOR  := static/vendor
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PORT    ?= 8501

PGURL   ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: run test lint install install-dev vendor browser postgres demo bench clean

run: install vendor data/beatmap.db
	$(BIN)/streamlit run app.py --server.port $(PORT)

# Lint and types, the whole suite on SQLite, then the library and store tests again on PostgreSQL.
test: install-dev vendor browser postgres lint
	$(BIN)/python -m pytest
	BEATMAP_TEST_DB=$(PGURL) $(BIN)/python -m pytest -m "not ui"

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# Leaflet comes from the npm registry at setup time and is served by the app itself (static/),
# so maps work on a closed network; the heat-map plugin is the file the folium wheel ships.
# axe-core (npm) is for the browser tests' accessibility checks only; no page loads it.
# Nothing here is fetched at run time.
vendor: $(VENDOR)/.installed
$(VENDOR)/.installed: package.json package-lock.json | install
	command -v npm >/dev/null || ($(SUDO) apt-get update && $(SUDO) apt-get install -y npm)
	npm ci --no-audit --no-fund --silent
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)/leaflet
	cp node_modules/leaflet/dist/leaflet.js node_modules/leaflet/dist/leaflet.css node_modules/leaflet/LICENSE $(VENDOR)/leaflet/
	cp -r node_modules/leaflet/dist/images $(VENDOR)/leaflet/
	mkdir -p $(VENDOR)/leaflet.heat
	cp "$$($(BIN)/python -c 'import folium, pathlib; print(pathlib.Path(folium.__file__).parent / "templates" / "leaflet_heat.min.js")')" $(VENDOR)/leaflet.heat/leaflet-heat.js
	mkdir -p $(VENDOR)/axe-core
	cp node_modules/axe-core/axe.min.js node_modules/axe-core/LICENSE $(VENDOR)/axe-core/
	touch $@

# The browser tests drive the system's Chromium (a browser download at test time fails offline).
browser:
	command -v chromium >/dev/null || ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)

# Lint, format check and type check of the library and the app (configured in pyproject.toml).
lint: install-dev
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/mypy

# The store tests' PostgreSQL server (installed from Debian's packages where none answers; CI has one).
postgres:
	scripts/test-postgres

data/beatmap.db: | install
	$(BIN)/beatmap demo

demo: install
	$(BIN)/beatmap demo

bench: install-dev vendor browser
	$(BIN)/python bench/coverage_core.py

clean:
	rm -rf $(VENV) node_modules $(VENDOR) data/beatmap.db data/demo
