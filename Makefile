# The README contract: `make demo` and `make test` do all the set-up on a fresh machine.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: demo federate test lint bench twin golden clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The report is the contract; the Data Docs (Great Expectations, out/validation/<site>/gx/) are
# extra and built off the refresh's path, after it.
demo: $(STAMP)
	$(BIN)/carpool demo --config carpool.yml
	$(BIN)/carpool docs --config carpool.yml

# The demo plan federated: the 4 demo centers as 4 vantage6 mock nodes -> out/federated/
# (docs/federated.md). Disclosure rules, coarsen_days included: `federated:` in carpool.yml.
federate: $(STAMP)
	$(BIN)/carpool refresh --config carpool.yml
	$(BIN)/carpool federate --config carpool.yml

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .

twin: $(STAMP)
	$(BIN)/carpool twin

# R reference values (needs Rscript + survival, cmprsk, metafor, e.g. apt-get install
# r-base-core r-cran-survival r-cran-cmprsk r-cran-metafor; `make test` never needs R).
# The twin's input is rebuilt from the demo first; then every tests/golden/*.R runs.
# Review the CSV diff before committing.
golden: $(STAMP)
	$(BIN)/python tests/golden/twin_frame.py
	@for f in tests/golden/*.R; do echo "Rscript $$f"; Rscript $$f || exit 1; done

# make bench [BENCH_SIZES=10000,30000,100000] [BENCH_SITES=8] [BENCH_LABS=100] [BENCH_REPEATS=1] [BENCH_DIR=/tmp/b]
BENCH_SIZES    ?= 10000,30000,100000
BENCH_SITES    ?= 8
BENCH_LABS     ?= 100
BENCH_REPEATS  ?= 1
bench: $(STAMP)
	BENCH_SIZES=$(BENCH_SIZES) BENCH_SITES=$(BENCH_SITES) BENCH_LABS=$(BENCH_LABS) \
	BENCH_REPEATS=$(BENCH_REPEATS) BENCH_DIR=$(BENCH_DIR) $(BIN)/python -m etl.scale.bench

clean:
	rm -rf out
