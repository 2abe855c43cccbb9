# The two commands: `make demo` (compile MiniLM through attn-raise and print the report) and `make test`.
# Both create .venv and install what is missing. torch is pinned to the CPU wheel first so nothing pulls CUDA.

VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.attnc-installed

.PHONY: demo test fuzz install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[models,test,onnx]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/attnc demo

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

fuzz: $(STAMP)  # the property tests of tests/unit/test_fuzz.py with many more examples (minutes)
	HF_HUB_OFFLINE=1 HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q tests/unit/test_fuzz.py

clean:
	rm -rf $(VENV) build *.egg-info
