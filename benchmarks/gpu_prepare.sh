#!/usr/bin/env bash
# Prepare what benchmarks/gpu_check.sh needs on a GPU machine without network, next to the checkout:
#   .whl/      cp312 wheels of what the GPU image lacks or holds too old, at CI's versions (constraints.txt)
#   .gpudata/  albert-base-v2/{config.json,spiece.model} and squad/dev-v1.1.json (from $1, default ../shared/data)
# Both are gitignored; carry them to the machine (see benchmarks/BENCHMARKS.md, "GPU check").
# The image (Python 3.12, torch 2.11 CUDA 13, transformers 5.17, onnx 1.23.1, onnxruntime 1.30 CPU,
# pytest, pytest-xdist, pytest-benchmark, hypothesis, pyyaml, requests, attrs) lacks onnxruntime >= 1.31,
# onnxsim, polygraphy, mlcommons-loadgen and check-jsonschema with its dependencies.  Never add a package
# the image already has at a working version (numpy, torch, ...): --target would shadow it.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${1:-../shared/data}
WHEELS=(onnxruntime onnxsim polygraphy mlcommons-loadgen check-jsonschema click jsonschema
        jsonschema-specifications referencing rpds-py regress ruamel-yaml)
mkdir -p .whl
for name in "${WHEELS[@]}"; do
    pin=$(grep -i "^${name}==" constraints.txt) || { echo "$name is not pinned in constraints.txt" >&2; exit 2; }
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "$pin"
done
mkdir -p .gpudata/albert-base-v2 .gpudata/squad
cp "$SRC/albert-base-v2/config.json" "$SRC/albert-base-v2/spiece.model" .gpudata/albert-base-v2/
cp "$SRC/squad/dev-v1.1.json" .gpudata/squad/
du -sh .whl .gpudata
