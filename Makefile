# distlab: two commands for everyone.
#   make lab    install (once) and open the course in JupyterLab
#   make test   install (once) and run every test
# Other targets: services, bench, grade, exercises, student, clean-notebooks, lint, clean.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Jupyter refuses to run as root without this flag (containers, CI machines).
ROOT_FLAG := $(shell [ "$$(id -u)" = "0" ] && echo --allow-root)

.PHONY: install lab test lint bench grade exercises student services clean-notebooks check-notebooks clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "distlab needs Python 3.11 or newer; set PYTHON=python3.11 (found " + sys.version.split()[0] + ")")'
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

# LAB_ARGS passes extra options to JupyterLab, e.g. make lab LAB_ARGS="--no-browser --port=9999"
LAB_ARGS ?=
lab: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" $(ROOT_FLAG) $(LAB_ARGS) lessons/00_start_here.ipynb

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Two runs: everything but the browser tests on TEST_JOBS processes (pytest-xdist, one
# test file per process at a time, so a file's fixtures are built once), then the browser
# tests in one process. PYTEST_ARGS goes to both, e.g. PYTEST_ARGS="tests/sim -x"; a run
# that it leaves without tests (pytest's exit code 5) is not a failure.
TEST_JOBS ?= 2
test: install lint
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadfile -m "not browser" $(PYTEST_ARGS) || [ $$? -eq 5 ]
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -m browser $(PYTEST_ARGS) || [ $$? -eq 5 ]

# The e-commerce application as real processes on 127.0.0.1 (registry, users, catalog,
# orders); Ctrl-C stops everything. SERVICES_ARGS e.g. "--ports auto --verbose".
SERVICES_ARGS ?=
services: install
	$(BIN)/python -m distlab.services.ecommerce.launcher run $(SERVICES_ARGS)

bench: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m benchmarks

grade: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/distlab grade-all

exercises: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/distlab release

# The copy that goes to students (no solutions, hidden tests, gradebook or history):
# make student STUDENT_DIR=../distlab-student, then zip it or push it as its own repository.
STUDENT_DIR ?= ../distlab-student
student: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/distlab student-edition "$(STUDENT_DIR)"

clean-notebooks: install
	$(BIN)/python -m distlab.course.notebooks clean lessons solutions exercises quizzes

check-notebooks: install
	$(BIN)/python -m distlab.course.notebooks check lessons solutions exercises quizzes

clean:
	rm -rf $(VENV) _grading .pytest_cache .mypy_cache .ruff_cache
