#!/usr/bin/env bash
# The GPU benchmarks of issue 15, on one CUDA machine, in about 8-10 minutes (H100-class card):
#   1. training throughput with BERT-base shapes (model=bert-base, random init: throughput needs
#      no pretrained weights; config + tokenizer from bert-base-cased-tokenizer), bf16;
#   2. the same with MiniLM's shapes (random init too, so only its config and tokenizer are
#      needed), bf16;
#   3. time to accuracy with MiniLM: nerlit vs the HF Trainer at its best, one seed.
# On a GPU a framework's overhead (kernel launches, host syncs, data loading) shows where the
# 2-core CPU hides it behind the arithmetic. Each throughput run prints words/s, tokens/s, peak
# GPU memory, nerlit's ratio to each peer and every variant's model FLOP utilization (its share
# of a bf16 matmul's FLOP/s measured on the same GPU in the same run).
#
#   bash bench/gpu.sh                      # everything, defaults below
#   STEPS=100 TTA=0 bash bench/gpu.sh      # longer throughput runs, no time to accuracy
#
# Options (environment variables):
#   PYTHON        interpreter with nerlit (`pip install -e .`) and its dependencies importable
#                 (default: .venv/bin/python when its torch sees CUDA, else python3)
#   SENTENCES     GMB training sentences for throughput (default 8000)
#   STEPS         optimizer steps per variant (default 50), WARMUP untimed first steps (default 10)
#   BATCH_BERT    batch size for BERT-base (default 128), BATCH_MINILM for MiniLM (default 256)
#   VARIANTS      throughput variants (default nerlit,hf,hf-grouped,bare; add flair where its
#                 virtualenv exists or can be built: it needs a package index)
#   WORKERS       data-loader workers for nerlit and hf-grouped (default 4)
#   PRECISION     every variant and system: bf16-mixed (default), 32-true or auto
#   HF_COMPILE    1: the HF Trainer at its best also gets torch_compile (default 0)
#   TTA           0: skip time to accuracy (default 1)
#   TTA_SYSTEMS   default nerlit,hf; TTA_SEEDS default 1; TTA_MAX_SECONDS per run (default 150);
#                 TTA_TARGET default 0.82; TTA_ARGS more options for bench/time_to_accuracy.py
#   LOG_DIR       where each step's full output goes (default $OUT if set, else outputs/bench-gpu)
set -euo pipefail
cd "$(dirname "$0")/.."

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
SENTENCES="${SENTENCES:-8000}" STEPS="${STEPS:-50}" WARMUP="${WARMUP:-10}"
BATCH_BERT="${BATCH_BERT:-128}" BATCH_MINILM="${BATCH_MINILM:-256}"
VARIANTS="${VARIANTS:-nerlit,hf,hf-grouped,bare}" WORKERS="${WORKERS:-4}"
PRECISION="${PRECISION:-bf16-mixed}"
TTA="${TTA:-1}" TTA_SYSTEMS="${TTA_SYSTEMS:-nerlit,hf}" TTA_SEEDS="${TTA_SEEDS:-1}"
TTA_MAX_SECONDS="${TTA_MAX_SECONDS:-150}" TTA_TARGET="${TTA_TARGET:-0.82}"
LOG_DIR="${LOG_DIR:-${OUT:-outputs/bench-gpu}}"
mkdir -p "$LOG_DIR"

echo "== GPU"
if ! command -v nvidia-smi >/dev/null; then
  echo "bench/gpu.sh is for a CUDA machine: nvidia-smi not found (on a CPU: make bench-train, make bench-tta)" >&2
  exit 1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
GPU_NAME="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)"

echo "== preflight ($PYTHON)"
"$PYTHON" - <<'EOF'
import importlib.util
import sys

needed = ["torch", "transformers", "lightning", "hydra", "omegaconf", "seqeval", "nerlit"]
missing = [name for name in needed if importlib.util.find_spec(name) is None]
if missing:
    sys.exit(
        f"missing Python packages: {', '.join(missing)}. Install nerlit into this interpreter "
        "(pip install -e . ; on a machine with no index, carry its dependencies as wheels: "
        "bench/README.md), or point PYTHON at one that has it."
    )
import torch

import nerlit.train  # noqa: F401  (every dependency of a training run imports)

if not torch.cuda.is_available():
    sys.exit(
        "torch sees no CUDA device: bench/gpu.sh is for a CUDA machine "
        "(on a CPU: make bench-train, make bench-tta)"
    )
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name()}")
EOF

compile_flag=()
[[ "${HF_COMPILE:-0}" == 1 ]] && compile_flag=(--hf-compile)
throughput() {  # $1: log name; the rest: model arguments
  local name="$1"
  shift
  echo "== throughput: $name"
  "$PYTHON" bench/train_throughput.py --device cuda --precision "$PRECISION" \
    --sentences "$SENTENCES" --steps "$STEPS" --warmup "$WARMUP" --workers "$WORKERS" \
    --variants "$VARIANTS" ${compile_flag[@]+"${compile_flag[@]}"} "$@" 2>&1 | tee "$LOG_DIR/throughput-$name.log"
}

throughput bert-base --model bert-base --from-scratch \
  --model-dir "$NERLIT_MODELS_DIR/bert-base-cased-tokenizer" --batch-size "$BATCH_BERT"
throughput minilm --model minilm --from-scratch --batch-size "$BATCH_MINILM"

MINILM_DIR="$NERLIT_MODELS_DIR/all-MiniLM-L6-v2"
if [[ "$TTA" == 1 ]] && ! compgen -G "$MINILM_DIR/*.safetensors" >/dev/null \
  && ! compgen -G "$MINILM_DIR/*.bin" >/dev/null; then
  echo "== time to accuracy skipped: no MiniLM weights in $MINILM_DIR (it needs pretrained weights)"
  TTA=0
fi
if [[ "$TTA" == 1 ]]; then
  echo "== time to accuracy: MiniLM, target $TTA_TARGET"
  # shellcheck disable=SC2086  # TTA_ARGS is a list of options
  "$PYTHON" bench/time_to_accuracy.py --device cuda --precision "$PRECISION" --model minilm \
    --systems "$TTA_SYSTEMS" --seeds "$TTA_SEEDS" --max-seconds "$TTA_MAX_SECONDS" \
    --target "$TTA_TARGET" --workers "$WORKERS" ${TTA_ARGS:-} 2>&1 | tee "$LOG_DIR/tta-minilm.log"
fi

echo "== summary ($GPU_NAME)"
for log in "$LOG_DIR"/throughput-*.log "$LOG_DIR"/tta-*.log; do
  [[ -f "$log" ]] || continue
  echo "$(basename "$log" .log): $(tail -n 1 "$log")"
done
