# ML Notebook — the two commands (see README.md):
#   make book   build the whole book, executed, in the quick profile (offline), into _build/html
#   make test   run the tests (including a smoke build of the book; MLBOOK_BOOK_HTML=<built html> reuses a build)
# Both create the virtual environment .venv with the pinned toolchain on first use.
# Optional: make pdf   the PDF edition (_build/pdf/ml-notebook.pdf, also copied into _build/html), printed by headless
#                      Chromium from a single-page build that reuses the execution cache of `make book`.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mlbook-installed
# The runtime pins: CPU TensorFlow by default; a GPU runner passes RUNTIME=requirements/gpu.txt.
RUNTIME ?= requirements/runtime-cpu.txt
REQUIREMENTS := $(RUNTIME) requirements/book.txt requirements/test.txt requirements/constraints.txt
export MLBOOK_PROFILE ?= quick

.PHONY: book test env clean lock colab pdf

env: $(STAMP)

$(STAMP): $(REQUIREMENTS) code/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r $(RUNTIME) -r requirements/book.txt \
	    -r requirements/test.txt -c requirements/constraints.txt
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps -e ./code
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . -W --keep-going

test: $(STAMP)
	tools/ensure-chromium
	$(BIN)/python -m pytest

pdf: $(STAMP)
	tools/ensure-chromium
	$(BIN)/python tools/pdf.py

colab: $(STAMP)
	$(BIN)/python tools/colab.py

lock: $(STAMP)
	{ echo "# Every transitive package pinned (pip freeze of a working CPU environment); regenerate with 'make lock'."; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v '^mlbook'; } > requirements/constraints.txt

clean:
	rm -rf _build
