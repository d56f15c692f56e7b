#!/usr/bin/env bash
# Chapter 09's fine-tuning from a base model pretrained at GPU scale: does a larger, longer
# trained base reach what the tiny CPU base does not (80% exact match overall, 50% in every task
# family)? sft_recipe_study.md has the CPU runs this one extends.
#
#   bash benchmarks/sft_scale.sh [results folder]      # from the repository root, on a GPU
#
# 1. a base of the `mini` shape (6 layers, 6 heads, width 384; ~11.5 M parameters) pretrained on
#    ~52 M tokens of stories (1,600 steps of 256 blocks of 128 tokens, lr 1e-3, bf16 on a GPU),
#    then probed: how often it finishes a story's sums, reversed words and verdicts, and whether
#    it copies a list it has just read;
# 2. fine-tuned on 10,000 conversations per family, 3,000 steps of 64 (about three epochs), at
#    two learning rates; each run prints exact match per family and per skill on 100 test
#    conversations per family, and on held-out phrasings.
# The base is pretrained once and cached (in $SFTLEARN_CACHE, default a folder under /tmp): the
# second fine-tuning loads it. On one H100 the whole run should take about 5 minutes, most of it
# making and tokenizing ~200 M characters of text on the CPU. Runs without installing the
# package (PYTHONPATH).
set -uo pipefail
out=${1:-${OUT:-gpu_results}}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export SFTLEARN_CACHE=${SFTLEARN_CACHE:-/tmp/sftlearn-scale-cache}
py=${PYTHON:-python3}
# Without a GPU there is nothing to measure here (and sft_scale.sh would pretrain for hours on
# the CPU): stop at once, successfully, saying so.
if ! "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "No CUDA GPU visible to PyTorch: $(basename "$0") measures GPUs only; nothing was run."
    exit 0
fi
status=0

base=(--layers 6 --heads 6 --width 384 --pretrain-steps 1600 --pretrain-batch 256 --pretrain-lr 1e-3)
sft=(--steps 3000 --batch 64 --n 10000 --test 100 --threads 8 --device cuda)  # threads: the CPU-side probe
for lr in 3e-4 1e-3; do
    probe=()
    [[ $lr == 3e-4 ]] && probe=(--probe)  # the base is the same for both: probe it once
    echo "=== fine-tuning at lr $lr"
    start=$SECONDS
    "$py" benchmarks/sft_ceiling.py "${base[@]}" "${sft[@]}" --lr "$lr" "${probe[@]}" 2>&1 \
        | tee "$out/sft_scale_lr$lr.txt" || status=1
    echo "=== took $((SECONDS - start)) s"
done
exit $status
