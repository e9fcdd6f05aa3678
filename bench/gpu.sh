#!/usr/bin/env bash
# nerlit on one CUDA GPU, against the HF Trainer at its best and a bare loop, in about 8 minutes
# (an H100-class card). Run bench/gpu-bundle.sh first where the GPU machine has no package index:
# this script then installs .gpu/wheels into /tmp/site and reads .gpu/data and .gpu/models.
#   1. bench/gpu_probe.py: step ms per attention kernel on new and seen lengths, kernel launches,
#      GPU vs wall ms per step, host syncs per training step and per evaluation batch;
#   2. training throughput, BERT-base shapes (random init), batch 128: nerlit (its GPU defaults:
#      auto attention, padding to a multiple of 32), nerlit with its GPU preset (trainer=gpu),
#      the HF Trainer (plain and length-grouped), the bare loop; then nerlit at a larger token
#      budget (MAX_TOKENS_BIG) for model FLOP utilization;
#   3. the same with MiniLM's shapes, batch 256;
#   4. time to accuracy with MiniLM: nerlit with trainer=gpu vs the HF Trainer at its best, one
#      seed, each system's start-up seconds printed;
#   5. start-up of the `nerlit train trainer=gpu` command (summary.json's startup_seconds);
#   6. if BUDGET seconds are not spent yet: MiniLM throughput with model.compile=default.
# The last line (bench/gpu_summary.py) is
#   gpu_speedup_vs_hf_best_bert=X gpu_speedup_vs_hf_best_minilm=Y mfu_preset_bert=Z tta_gpu_seconds=S tta_gpu_speedup=R
#
# Options (environment variables): PYTHON, SENTENCES (8000), STEPS (100), WARMUP (20),
# BATCH_BERT (128), BATCH_MINILM (256), MAX_TOKENS_BIG (32768), WORKERS (4), TTA (1),
# TTA_MAX_SECONDS (80), TTA_TARGET (0.82), BUDGET (420: seconds after which optional steps are
# skipped), LOG_DIR (default $OUT where set, else outputs/bench-gpu).
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ -d .gpu/wheels ]]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .gpu/wheels/*.whl || exit 1
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
  export NERLIT_DATA_DIR="${NERLIT_DATA_DIR:-$PWD/.gpu/data}"
  export NERLIT_MODELS_DIR="${NERLIT_MODELS_DIR:-$PWD/.gpu/models}"
fi
SHARED_DIR="${NERLIT_SHARED_DIR:-$(cd .. && pwd)/shared}"
export NERLIT_DATA_DIR="${NERLIT_DATA_DIR:-$SHARED_DIR/data}"
export NERLIT_MODELS_DIR="${NERLIT_MODELS_DIR:-$SHARED_DIR/models}"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" TRANSFORMERS_OFFLINE="${TRANSFORMERS_OFFLINE:-1}"
export TOKENIZERS_PARALLELISM="${TOKENIZERS_PARALLELISM:-false}" PYTHONUNBUFFERED=1

if [[ -z "${PYTHON:-}" ]]; then
  PYTHON=python3
  if [[ -x .venv/bin/python ]] && .venv/bin/python -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
    PYTHON=.venv/bin/python
  fi
fi
SENTENCES="${SENTENCES:-8000}" STEPS="${STEPS:-100}" WARMUP="${WARMUP:-20}"
BATCH_BERT="${BATCH_BERT:-128}" BATCH_MINILM="${BATCH_MINILM:-256}"
MAX_TOKENS_BIG="${MAX_TOKENS_BIG:-32768}" WORKERS="${WORKERS:-4}"
TTA="${TTA:-1}" TTA_MAX_SECONDS="${TTA_MAX_SECONDS:-80}" TTA_TARGET="${TTA_TARGET:-0.82}"
BUDGET="${BUDGET:-420}"
LOG_DIR="${LOG_DIR:-${OUT:-outputs/bench-gpu}}"
mkdir -p "$LOG_DIR"
BERT_DIR="$NERLIT_MODELS_DIR/bert-base-cased-tokenizer"
MINILM_DIR="$NERLIT_MODELS_DIR/all-MiniLM-L6-v2"

echo "== GPU"
if ! command -v nvidia-smi >/dev/null; then
  echo "bench/gpu.sh is for a CUDA machine: nvidia-smi not found (on a CPU: make bench-train, make bench-tta)" >&2
  exit 1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
GPU_NAME="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)"

echo "== preflight ($PYTHON)"
"$PYTHON" - <<'EOF' || exit 1
import importlib.util
import sys

needed = ["torch", "transformers", "lightning", "hydra", "omegaconf", "seqeval", "nerlit"]
missing = [name for name in needed if importlib.util.find_spec(name) is None]
if missing:
    sys.exit(
        f"missing Python packages: {', '.join(missing)}. Run bench/gpu-bundle.sh where pip works "
        "and carry .gpu/, or point PYTHON at an interpreter that has them."
    )
import torch
import transformers
import lightning

import nerlit.commands.train  # noqa: F401  (every dependency of a training run imports)

if not torch.cuda.is_available():
    sys.exit("torch sees no CUDA device: bench/gpu.sh is for a CUDA machine")
print(
    f"torch {torch.__version__}, CUDA {torch.version.cuda}, transformers "
    f"{transformers.__version__}, lightning {lightning.__version__}, {torch.cuda.get_device_name()}"
)
EOF

run() {  # $1: log name; the rest: the command. Output to the screen and $LOG_DIR/<name>.log
  local name="$1"
  shift
  echo "== $name ($SECONDS s)"
  "$@" 2>&1 | tee "$LOG_DIR/$name.log" | grep -v -i "warn\|tip\|^\s*$\|LOAD REPORT\|^Key\|^---\|UNEXPECTED\|MISSING\|^Notes\|^- " | tail -n 40
}
throughput() {  # $1: log name; the rest: options
  local name="$1"
  shift
  run "$name" "$PYTHON" bench/train_throughput.py --device cuda --precision bf16-mixed \
    --sentences "$SENTENCES" --steps "$STEPS" --warmup "$WARMUP" --workers "$WORKERS" \
    --json "$LOG_DIR/$name.json" "$@"
}

run probe "$PYTHON" bench/gpu_probe.py --json "$LOG_DIR/probe.json" \
  --model-dir "$BERT_DIR" --minilm-dir "$MINILM_DIR"
throughput throughput-bert --model bert-base --from-scratch --model-dir "$BERT_DIR" \
  --batch-size "$BATCH_BERT" --variants nerlit,nerlit-preset,hf,hf-grouped,bare
throughput throughput-minilm --model minilm --from-scratch --model-dir "$MINILM_DIR" \
  --batch-size "$BATCH_MINILM" --variants nerlit,nerlit-preset,hf-grouped,bare
throughput throughput-bert-big --model bert-base --from-scratch --model-dir "$BERT_DIR" \
  --batch-size 2048 --max-tokens "$MAX_TOKENS_BIG" --variants nerlit --steps 40 --warmup 10

if [[ "$TTA" == 1 ]] && compgen -G "$MINILM_DIR/*.safetensors" >/dev/null; then
  run tta-minilm "$PYTHON" bench/time_to_accuracy.py --device cuda --precision bf16-mixed \
    --model minilm --model-dir "$MINILM_DIR" --systems nerlit,hf --seeds 1 \
    --max-seconds "$TTA_MAX_SECONDS" --target "$TTA_TARGET" --workers "$WORKERS" \
    --nerlit-args "trainer=gpu" --json "$LOG_DIR/tta-minilm.json"
fi

if compgen -G "$MINILM_DIR/*.safetensors" >/dev/null; then
  STARTUP_DIR="$(mktemp -d)"
  run startup "$PYTHON" -m nerlit.train trainer=gpu "model.pretrained=$MINILM_DIR" \
    trainer.max_steps=3 trainer.limit_val_batches=2 test=false logger=none \
    "hydra.run.dir=$STARTUP_DIR"
  cp "$STARTUP_DIR/summary.json" "$LOG_DIR/startup.json" 2>/dev/null
fi

if (( SECONDS < BUDGET )); then
  throughput throughput-minilm-compile --model minilm --from-scratch --model-dir "$MINILM_DIR" \
    --batch-size "$BATCH_MINILM" --variants nerlit,bare --compile default --warmup 30
else
  echo "== compile skipped: $SECONDS s spent, budget $BUDGET s"
fi

echo "== summary ($GPU_NAME, $SECONDS s)"
"$PYTHON" bench/gpu_summary.py "$LOG_DIR" --gpu "$GPU_NAME" | tee "$LOG_DIR/summary.txt"
