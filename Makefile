# vizsearch: `make demo` brings the local stack up and runs its main job; `make test` runs the tests.
# Both install what they need first (make setup), on a fresh Debian/Ubuntu machine.

VENV   ?= .venv
PYTHON := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup up demo eval demo-model down status test proto proto-check bench-embed bench-cpu-runtimes bench-gpu bench-ingest bench-query bench-ui bench-duplicates bench-suspects bench-map chaos images clean

setup: $(STAMP)

# System packages (Redis; the emoji font the demo dataset draws with; Chromium, which the web
# app's tests drive headless), then the venv.
# torch goes first, pinned: the CPU wheel, before anything that depends on torch can
# pull a multi-GB CUDA build. open_clip_torch only supplies the CLIP BPE vocabulary
# file, so its dependencies are skipped.
$(STAMP): pyproject.toml
	@command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server; }
	@test -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf || { apt-get update -qq && apt-get install -y -qq fonts-noto-color-emoji; }
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }
	@test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q torch==2.13.0
	$(PYTHON) -m pip install -q -e ".[server,model,local,tracing,dev]"
	$(PYTHON) -m pip install -q --no-deps open_clip_torch==3.3.0
	@touch $@

up: setup
	$(PYTHON) -m services.localstack up

# The main job: a generated street-scene dataset in, a text, an image and an object query out.
demo: up
	$(PYTHON) -m services.localstack demo

# Retrieval quality on two generated held-out sets (classic and shifted), through the gateway (docs/model.md: "Retrieval quality").
EVAL_IMAGES ?= 500
eval: up
	$(PYTHON) -m model.evaluation --images $(EVAL_IMAGES) --out .run/eval.json

# Retrains the committed demo CLIP (models/vizsearch-demo-clip) on this machine's CPU.
demo-model: setup
	$(PYTHON) -m model.train_demo --out models/vizsearch-demo-clip

down:
	@test -x $(PYTHON) && $(PYTHON) -m services.localstack down || true

status: setup
	$(PYTHON) -m services.localstack status

# The GPU path's JPEG decoder (torchvision.io.decode_jpeg in model/device_preprocess.py) on the
# CPU, so that CI runs the code the Triton image runs: PyPI's torchvision imports only beside
# torch's CUDA build (5.5 GB, about a minute from a local index), which cannot share .venv's CPU
# wheel, so the two live in a venv of their own that sees .venv's other packages through a .pth.
TV_VENV   := .venv-torchvision
TV_PYTHON := $(TV_VENV)/bin/python
TV_STAMP  := $(TV_VENV)/.installed

$(TV_STAMP): $(STAMP)
	@test -x $(TV_PYTHON) || python3 -m venv $(TV_VENV)
	$(TV_PYTHON) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PYTHON) -c 'import sysconfig; print("import site; site.addsitedir(%r)" % sysconfig.get_path("purelib"))' \
		> "$$($(TV_PYTHON) -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/vizsearch-venv.pth"
	$(TV_PYTHON) -c 'from model import device_preprocess as d; assert d.jpeg_decoder() == "torchvision", d.jpeg_decoder()'
	@touch $@

test: setup $(TV_STAMP)
	$(PYTHON) -m pytest
	$(TV_PYTHON) -m pytest tests/test_jpeg_model.py

proto: setup
	$(PYTHON) -m services.common.protogen

proto-check: setup
	$(PYTHON) -m services.common.protogen --check

bench-embed: setup
	$(PYTHON) -m tests.bench.bench_embed

# The image tower in each CPU runtime (torch fp32/sdpa/int8/bf16, ONNX Runtime fp32/int8): images/s and fidelity.
bench-cpu-runtimes: setup
	$(PYTHON) -m tests.bench.bench_cpu_runtimes

# The GPU path on a machine with a GPU, no Triton server: fidelity, model-only, JPEG -> vectors, boxes, texts.
# No set-up: it runs the machine's own CUDA build of torch (the venv's is the CPU wheel), which
# needs torchvision, transformers, safetensors and pillow beside it (docs/benchmarks.md).
GPU_PYTHON ?= python3
bench-gpu:
	$(GPU_PYTHON) -m tests.bench.bench_gpu

N ?= 2000
A ?= 200
bench-ingest: setup
	$(PYTHON) -m tests.bench.bench_ingest --images $(N) --annotated $(A)

# The web app's speed in headless Chromium (docs/web-app.md).
QUERIES ?= 20
bench-ui: setup
	$(PYTHON) -m tests.bench.bench_ui --queries $(QUERIES)

# Faults during ingestion (a table of recovery times and counts; docs/faults.md).
IMAGES ?= 300
chaos: setup
	$(PYTHON) -m tests.bench.chaos --images $(IMAGES)

# Duplicate detection: the threshold's precision and recall (docs/insights.md).
ORIGINALS ?= 100
bench-duplicates: setup
	$(PYTHON) -m tests.bench.bench_duplicates --originals $(ORIGINALS) $(if $(SCALE),--scale $(SCALE))

# Suspect labels on demo data with a known fraction relabelled (docs/insights.md).
SUSPECT_IMAGES ?= 300
SWAPPED ?= 0.1
bench-suspects: setup
	$(PYTHON) -m tests.bench.bench_suspects --images $(SUSPECT_IMAGES) --swapped $(SWAPPED)

# A map job's time on synthetic vectors (docs/insights.md).
POINTS ?= 100000
bench-map: setup
	$(PYTHON) -m tests.bench.bench_map --points $(POINTS)

VECTORS ?= 100000
bench-query: setup
	$(PYTHON) -m tests.bench.bench_query --vectors $(VECTORS)

# Container images, where Docker exists (not on the development machine).
TAG ?= $(shell git describe --tags --always --dirty)
images:
	docker build -f deploy/docker/Dockerfile -t ghcr.io/vizsearch/vizsearch:$(TAG) .
	docker build -f deploy/docker/triton.Dockerfile -t ghcr.io/vizsearch/vizsearch-triton:$(TAG) .

clean: down
	rm -rf .run
