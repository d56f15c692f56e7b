#!/usr/bin/env bash
# Every check that needs a CUDA GPU, in one run: CI has no GPU, and a borrowed one is short.
#
#   bash benchmarks/gpu_check.sh [results folder]      # from the repository root
#
# 1. the device and the software versions;
# 2. tests/test_cuda.py: bf16 autocast, TF32, fused AdamW, fused (flash) attention,
#    torch.compile and the KV cache on the GPU;
# 3. training throughput of the `small` preset (GPT-2 small's shape, 124 M parameters,
#    context 1024): sftlearn's Trainer against Hugging Face's GPT-2, first eager, then with
#    every side compiled, then the compiled Trainer alone at a larger batch. The tables give
#    tokens/s and MFU; benchmarks/RESULTS.md records them;
# 4. a profile of the eager Trainer step: which kernels take the GPU's time.
#
# Each step's output is also written to the results folder (default: $OUT if set, else
# gpu_results/), so whatever finished survives a run that is cut short. Runs without installing
# the package (PYTHONPATH) and without the notebook plugins the project's pytest options name.
set -uo pipefail
out=${1:-${OUT:-gpu_results}}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
# Without a GPU there is nothing to measure here (and sft_scale.sh would pretrain for hours on
# the CPU): stop at once, successfully, saying so.
if ! "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "No CUDA GPU visible to PyTorch: $(basename "$0") measures GPUs only; nothing was run."
    exit 0
fi
status=0

step() {  # step NAME COMMAND...: run a command, keep its output, remember a failure
    local name=$1
    shift
    echo "=== $name: $*"
    local start=$SECONDS
    "$@" 2>&1 | tee "$out/$name.txt" || status=1
    echo "=== $name took $((SECONDS - start)) s"
}

step device bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm \
    --format=csv && $py -c \"import torch, transformers; print('torch', torch.__version__, \
    'CUDA', torch.version.cuda, '| transformers', transformers.__version__, '|', \
    torch.cuda.get_device_name())\""
step test_cuda "$py" -m pytest tests/test_cuda.py -v -o addopts="" -p no:cacheprovider
small=(benchmarks/train_throughput.py --preset small --device cuda --steps 10)
step eager "$py" "${small[@]}" --batch 16
step compiled "$py" "${small[@]}" --batch 16 --compile --sides hf
step compiled_b32 "$py" "${small[@]}" --batch 32 --compile --sides none
step profile "$py" "${small[@]}" --batch 16 --steps 5 --profile  # eager: where GPU time goes
exit $status
