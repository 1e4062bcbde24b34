# The two commands a newcomer needs are `make local` and `make test`; the rest are parts of them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUPABASE_CLI := tools/supabase-cli/node_modules/.bin/supabase
INSTALLED := $(VENV)/.installed-$(shell cat requirements-dev.lock pyproject.toml | sha256sum | cut -c1-12)

.PHONY: install local local-down run test lint typecheck bench lock audit generate clean-venv

$(INSTALLED): requirements-dev.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip --upgrade
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $@

## install: the virtualenv with every locked dependency, and the pinned Supabase CLI.
install: $(INSTALLED) $(SUPABASE_CLI)

# The Supabase CLI from npm, pinned in tools/supabase-cli (the tests install it too).
$(SUPABASE_CLI): tools/supabase-cli/package.json tools/supabase-cli/package-lock.json
	npm ci --prefix tools/supabase-cli --no-audit --no-fund
	touch $@

## local: build the image and run the whole topology on the local Docker engine.
local: $(INSTALLED)
	$(BIN)/ops local up

## local-down: remove the local topology; the database volume stays unless ARGS=--volumes.
local-down: $(INSTALLED)
	$(BIN)/ops local down $(ARGS)

## run: the service alone, on the host, configured from .env (see .env.example).
run: $(INSTALLED)
	$(BIN)/jobsearch-api

## test: lint, types and the whole suite (installs Docker and starts what it needs).
test: $(INSTALLED) lint
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/hadolint service/Dockerfile infra/local/recipes/*/Dockerfile
	$(BIN)/actionlint
	$(BIN)/zizmor --offline --min-severity low .github/workflows
	$(BIN)/squawk service/supabase/migrations/*.sql
	@if [ -n "$$GITHUB_ACTIONS" ]; then $(MAKE) --no-print-directory audit; else echo "audit: skipped, no vulnerability database is reachable here (CI runs make audit)"; fi

## generate: rewrite every file copied from a single source (infra/generated.py lists them);
## tests/test_generated.py fails while one is stale.
generate: $(INSTALLED)
	$(BIN)/python -m infra.generated

## bench: run the benchmarks under bench/ and rewrite docs/benchmarks.md.
bench: $(INSTALLED)
	$(BIN)/python -m bench

## lock: re-resolve requirements.lock (the image) and requirements-dev.lock (CI, developers),
## with the uv the dev lock installs into the virtualenv.
lock: $(INSTALLED)
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes --no-header --quiet -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra infra --extra dev -c requirements.lock --universal --python-version 3.11 --generate-hashes --no-header --quiet -o requirements-dev.lock

## audit: both locks against known vulnerabilities (PyPI's advisory data, per pinned release).
## It needs PyPI's JSON API: CI (GITHUB_ACTIONS) runs it in `make lint`; a machine without
## that API (the build machine here) skips it there and says so.
audit: $(INSTALLED)
	$(BIN)/pip-audit --strict --disable-pip --require-hashes --progress-spinner off --vulnerability-service pypi -r requirements.lock -r requirements-dev.lock

clean-venv:
	rm -rf $(VENV)
