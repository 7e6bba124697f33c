# ML Notebook — the two commands (see README.md):
#   make book   build the whole book, executed, in the quick profile (offline), into _build/html
#   make test   run the tests (including a smoke build of the book; MLBOOK_BOOK_HTML=<built html> reuses a build)
# Both create the virtual environment .venv with the pinned toolchain on first use.
# Optional: make test-minimum   the package's fast tests on the lowest versions code/pyproject.toml allows
#                               (requirements/minimum.txt), in their own environment .venv-minimum
#           make pdf   the PDF edition (_build/pdf/ml-notebook.pdf, also copied into _build/html), printed by headless
#                      Chromium from a single-page build that reuses the execution cache of `make book`.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mlbook-installed
# The runtime pins: CPU TensorFlow by default; a GPU runner passes RUNTIME=requirements/gpu.txt. The environment is
# installed from that runtime's lock (requirements/runtime-cpu.lock.txt, requirements/gpu.lock.txt): every package,
# pinned, with the SHA-256 of each of its files, installed with --require-hashes. `make lock` writes the locks.
RUNTIME ?= requirements/runtime-cpu.txt
LOCK := $(RUNTIME:.txt=.lock.txt)
export MLBOOK_PROFILE ?= quick

.PHONY: book test test-minimum env clean lock colab pdf publish-results

env: $(STAMP)

# The package is installed with --no-build-isolation: its build backend (requirements/build.txt) comes from the lock.
$(STAMP): $(LOCK) code/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e ./code
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

# Ship this build's numbers with the package, for mlbook.compare_with_book (refuses a build with a number out of band).
publish-results: $(STAMP)
	$(BIN)/python tools/publish_results.py _build/html/results-$(MLBOOK_PROFILE).json

# Writes both locks from the pinned files (the runtime's, book.txt, test.txt, build.txt) with uv, in a throwaway venv.
# A package a lock already holds keeps its version unless a pinned file asks for another; delete a lock to re-resolve
# everything. The locks are universal (any OS, Python >= 3.11.5, the lowest the book toolchain runs on), and
# requirements/constraints.txt, the CPU lock without hashes, pins the partial installs of the tests (a bare runtime
# for the package and Colab checks).
LOCK_INPUTS := requirements/book.txt requirements/test.txt requirements/build.txt
LOCK_VENV ?= .venv-lock
UV_VERSION := 0.13.9

lock:
	test -x $(LOCK_VENV)/bin/python || $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --disable-pip-version-check -q uv==$(UV_VERSION)
	for runtime in runtime-cpu gpu; do \
	  $(LOCK_VENV)/bin/uv pip compile -q --generate-hashes --universal --python-version 3.11.5 --no-header \
	    requirements/$$runtime.txt $(LOCK_INPUTS) -o requirements/$$runtime.lock.txt || exit 1; \
	done
	{ echo "# The CPU lock (requirements/runtime-cpu.lock.txt) without its hashes, for partial installs; 'make lock' writes it."; \
	  sed -n 's/ \\$$//; /^[A-Za-z0-9]/p' requirements/runtime-cpu.lock.txt; } > requirements/constraints.txt

# The minimum-versions job: the declared lower bounds, exactly (requirements/minimum.txt), on Python 3.10, the lowest
# requires-python (CI's setup-python provides it as python3; elsewhere pass MINIMUM_PYTHON=python3.10). Only the
# package and pytest are installed, so it runs the tests of the package, every test file but those of the book's
# toolchain (BOOK_TESTS: jupyter-book, Sphinx, myst-nb, jupytext, nbclient, a browser, the linters, the workflow
# checkers), less the slow ones and the few marked `book` inside a package test file.
MINIMUM_PYTHON ?= $(PYTHON)
MINIMUM_VENV ?= .venv-minimum
MINIMUM_STAMP := $(MINIMUM_VENV)/.mlbook-installed
BOOK_TESTS := tests/test_alt.py tests/test_book.py tests/test_build_extension.py tests/test_citation.py tests/test_docstrings.py \
    tests/test_colab.py tests/test_downloads.py tests/test_equations.py tests/test_explorables_browser.py \
    tests/test_faults.py tests/test_lint.py tests/test_offline_site.py tests/test_package.py tests/test_pdf.py \
    tests/test_quiz_browser.py \
    tests/test_results.py tests/test_workflows.py
PACKAGE_TESTS := $(filter-out $(BOOK_TESTS),$(sort $(wildcard tests/test_*.py)))

$(MINIMUM_STAMP): requirements/minimum.txt code/pyproject.toml
	test -x $(MINIMUM_VENV)/bin/python || $(MINIMUM_PYTHON) -m venv $(MINIMUM_VENV)
	$(MINIMUM_VENV)/bin/python -m pip install --disable-pip-version-check -q -r requirements/minimum.txt
	$(MINIMUM_VENV)/bin/python -m pip install --disable-pip-version-check -q --no-deps -e ./code
	touch $(MINIMUM_STAMP)

test-minimum: $(MINIMUM_STAMP)
	$(MINIMUM_VENV)/bin/python -m pip freeze --disable-pip-version-check --exclude-editable
	$(MINIMUM_VENV)/bin/python -m pytest -m "not slow and not book" $(PACKAGE_TESTS)

clean:
	rm -rf _build
