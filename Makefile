# The README's two commands: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STUBS := $(VENV)/tensorrt-stubs
TORCH_CPU := torch==2.13.0 torchvision==0.28.0

.PHONY: install demo demo-detect test test-all lint bench clean

install: $(VENV)/.installed

# Install the pinned CPU build of PyTorch before anything else: an unpinned `torch`
# requirement would pull the multi-GB CUDA build from the registry.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_CPU)
	$(BIN)/python -m pip install -q -e '.[rtx,torch,cuda,dev]' $(TORCH_CPU)
	# TensorRT 10's type stubs, outside site-packages (their stub-only `tensorrt` package would
	# otherwise shadow a real TensorRT); tests/test_stubs.py reads them from here.
	$(BIN)/python -m pip install -q --no-deps --target $(STUBS) tensorrt-stubs==10.13.0.35.1
	touch $@

demo: install
	$(BIN)/netdef build lenet --weights weights/lenet_digits.safetensors --precision fp16 --batch 1:8:64 -o out/lenet.engine
	$(BIN)/netdef info out/lenet.engine

# The shipped digits detector on the shipped held-out image (the reference executor on the CPU,
# TensorRT where a supported GPU is present): boxes drawn to out/detect/digits_scene.png.
demo-detect: install
	$(BIN)/netdef detect yolov8n -w weights/yolov8n_digits.safetensors weights/digits_scene.png --imgsz 320 -o out/detect

test: install
	$(BIN)/ruff check netdef architectures tests examples benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -m "not slow"

test-all: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check netdef architectures tests examples benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) out .pytest_cache
