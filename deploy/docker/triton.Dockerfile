# Triton for vizsearch: the official server with what the python-backend CLIP models
# need (torch, transformers) and the model repository deploy/triton-models.
# Build from the repository root: docker build -f deploy/docker/triton.Dockerfile -t vizsearch-triton .
ARG TRITON_VERSION=24.10
FROM nvcr.io/nvidia/tritonserver:${TRITON_VERSION}-py3
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The python backend's stub runs the image's python3; torch's CUDA build comes with the
# official index for this CUDA (the GPU path runs the towers in fp16), and the matching
# torchvision, whose decode_jpeg runs nvJPEG for clip_jpeg.
# ONNX Runtime and the exporter serve CPU instances with VIZSEARCH_CPU_RUNTIME=onnx-int8.
RUN pip install "torch==2.5.1" "torchvision==0.20.1" "transformers>=4.44,<6" "safetensors>=0.4" "tokenizers>=0.19" \
    "onnx>=1.17" "onnxscript>=0.5" "onnxruntime>=1.20"
# torch.compile (VIZSEARCH_TORCH_COMPILE) builds its GPU kernels' launchers with a C
# compiler and Python's headers, which the official image leaves out.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev python3-dev \
    && rm -rf /var/lib/apt/lists/*
COPY deploy/triton-models /opt/vizsearch/triton-models
# The runtime the models share (model/triton_runtime.py), importable as `model`.
COPY model /opt/vizsearch/model
ENV PYTHONPATH=/opt/vizsearch
RUN chmod -R a+rX /opt/vizsearch
USER triton-server
CMD ["tritonserver", "--model-repository=/opt/vizsearch/triton-models"]
