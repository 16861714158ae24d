#!/usr/bin/env bash
# The adversarial fine-tunes of #13 for a lent GPU, in one command: HiFill, DeepFill and
# Pluralistic (training/configs/*-gpu.json) train side by side on the one GPU for MINUTES
# each, then every run's checkpoint, config and loss log is collected under OUT (small enough
# to travel back: scripts/gpu_collect.py).
#
#   scripts/gpu_adversarial.sh DATA OUT [MINUTES] [CONFIG...]
#
# DATA is a folder made here by `python -m training pack-data data/starter runs/gpu-data`
# (24 MiB; the full set is too big to carry). On the device machine, for example:
#   run(carry=["runs/gpu-data"], timeout_s=560,
#       command="PYTHONUNBUFFERED=1 scripts/gpu_adversarial.sh runs/gpu-data $OUT 7")
# Then here: python -m training evaluate --model hifill --run-dir FILES_AT/hifill-gpu, and
# export the winner (docs/measurements.md says how each was judged).
# The CPU test of this script: tests/test_gpu_script.py (tiny crops, same commands). RUNS,
# PYTHON, CONFIG_DIR and TRAIN_ARGS (more `training train` flags) override the defaults.
set -u
data=${1:?usage: gpu_adversarial.sh DATA OUT [MINUTES] [CONFIG...]}
out=${2:?usage: gpu_adversarial.sh DATA OUT [MINUTES] [CONFIG...]}
minutes=${3:-7}
shift $(($# < 3 ? $# : 3))
configs=${*:-hifill-gpu deepfill-gpu pluralistic-gpu}
py=${PYTHON:-python3}
runs=${RUNS:-runs}
extra=${TRAIN_ARGS:-}
config_dir=${CONFIG_DIR:-training/configs}

mkdir -p "$out"
{ date -u; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null \
    || echo "no nvidia-smi"; "$py" -c "import torch; print('torch', torch.__version__,
    'cuda', torch.cuda.is_available())"; } > "$out/machine.txt" 2>&1

pids=()
for cfg in $configs; do
    model=${cfg%%-*}
    # shellcheck disable=SC2086  # TRAIN_ARGS is a list of words
    "$py" -m training train --model "$model" --config "$config_dir/$cfg.json" \
        --data "$data" --run-dir "$runs/$cfg" --max-minutes "$minutes" $extra \
        > "$out/$cfg.log" 2>&1 &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
for cfg in $configs; do
    "$py" scripts/gpu_collect.py "$runs/$cfg" "$out/$cfg" || status=1
done
nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv >> "$out/machine.txt" 2>&1
exit $status
