# PhaseBench: `make demo` and `make test` are the two commands a new machine needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PHASEBENCH := $(VENV)/bin/phasebench
# The CPU wheel on this kind of machine; GPU hosts set e.g. TORCH_SPEC='torch==2.13.0' with their index.
TORCH_SPEC ?= torch==2.13.0
UV_VERSION ?= 0.13.9
STAMP := $(VENV)/.installed
PORT ?= 5000
# Instances evaluated at once by `make demo`: one per CPU this process may use, at most 4 (each
# worker may take the task's whole per-instance memory limit). Not `nproc`: it honours OMP_NUM_THREADS.
WORKERS ?= $(shell $(PYTHON) -c 'import os; print(min(4, len(os.sched_getaffinity(0))))' 2>/dev/null || echo 1)

# pytest-xdist processes for `make test` / `make test-fast`: two, as CI's machine has two cores (the
# suite's own subprocesses, sandboxes and BLAS threads fill what is left).
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup

.PHONY: install demo test test-fast serve data perf clean evaluator-image evaluate-in-container

# The baselines' shared library (evaluator/baselines_library): an edit to it reinstalls it.
BASELINES_LIB := evaluator/baselines_library
BASELINES_LIB_FILES := $(BASELINES_LIB)/pyproject.toml $(wildcard $(BASELINES_LIB)/phasebench_baselines/*.py)

$(STAMP): pyproject.toml Makefile $(BASELINES_LIB_FILES)
	@command -v bwrap >/dev/null 2>&1 || ./scripts/install-bubblewrap
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned, so that the project's range never pulls a multi-GB CUDA build here.
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	# The rest through uv: the same versions pip picks (checked: identical `pip list`), in seconds
	# instead of 29 s. torch stays pip's (uv reads no pip configuration, and with torch installed
	# the project's range asks for nothing more). pip is the fallback should uv fail here.
	# --compile-bytecode as pip does: the sandboxed workers run with -B and a read-only venv, so
	# without the .pyc files every instance would compile numpy's sources again (seen: twice the
	# per-instance time of the whole demo).
	$(PY) -m pip install --quiet 'uv==$(UV_VERSION)'
	$(VENV)/bin/uv pip install --python $(PY) --quiet --compile-bytecode -e '.[test]' || \
		{ echo "uv could not install the project; installing with pip" >&2; $(PY) -m pip install --quiet -e '.[test]'; }
	# A copy, not editable: the sandbox binds the venv read-only but never the repository. No build
	# folder is left behind (a module deleted from the source would be installed from it again).
	rm -rf $(BASELINES_LIB)/build
	$(PY) -m pip install --quiet --no-deps --force-reinstall ./$(BASELINES_LIB)
	rm -rf $(BASELINES_LIB)/build $(BASELINES_LIB)/*.egg-info
	touch $(STAMP)

install: $(STAMP)

data: install
	$(PHASEBENCH) data build --workers $(WORKERS)

demo: data
	$(PHASEBENCH) db upgrade
	$(PHASEBENCH) validate submissions/*/
	$(PHASEBENCH) evaluate submissions/*/ --split dev --workers $(WORKERS) || echo "some evaluations failed (see above); serving what was stored" >&2
	@echo "Leaderboard: http://127.0.0.1:$(PORT)  (Ctrl-C to stop)"
	$(PHASEBENCH) serve --port $(PORT)

test: install
	@# The embedded dev splits, which the tests use where they verify (a failed pin is reported by the tests).
	@$(PHASEBENCH) data build --workers $(WORKERS) || echo "data build failed: the tests build their own copies and say which pin differs" >&2
	@$(PYTEST); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure here" >&2; exit 1; fi; \
	exit $$rc

# The inner loop: no tests marked slow (end-to-end runs of real baselines, container builds, data
# rebuilds) or service (container engine, broker, PostgreSQL, browser); about 3.5 minutes on two
# quiet cores. `make test` still runs everything.
test-fast: data
	@$(PYTEST) -m "not slow and not service" -q

perf: data
	$(PY) perf/sandbox_overhead.py
	$(PY) perf/scoring_speed.py

# The evaluator image (Docker or Podman), then one submission evaluated exactly as the official
# evaluator does: `make evaluate-in-container SUBMISSION=submissions/topk-sae`.
evaluator-image:
	./scripts/container-engine build

evaluate-in-container: data
	@eval "$$(./scripts/container-engine start)"; export PHASEBENCH_DOCKER_HOST; \
	$(PHASEBENCH) evaluate $(SUBMISSION) --sandbox docker --split dev

clean:
	rm -rf $(VENV) var build *.egg-info
