#!/usr/bin/env bash
# Prepare what a lent GPU machine needs to run bench/gpu.sh, inside the checkout (.gpu/, ignored
# by git through .git/info/exclude), and check that the checkout then travels in 64 MiB:
#   .gpu/wheels/   nerlit's wheel and the dependencies such machines lack (hydra-core, omegaconf,
#                  antlr4-python3-runtime, seqeval, nervaluate); they have torch, transformers,
#                  lightning, torchmetrics and rich, and no package index
#   .gpu/data/     GMB (3 MB)
#   .gpu/models/   bert-base-cased-tokenizer (config + tokenizer: BERT-base shapes, random init) and
#                  all-MiniLM-L6-v2 with its weights stored in fp16 (45 MB instead of 91) and
#                  "dtype": "float32" in config.json, so transformers loads them back as fp32
#                  (nerlit loads every encoder in fp32 anyway)
#
#   bash bench/gpu-bundle.sh            # then, on the GPU machine (the device tool's run):
#   bash bench/gpu.sh                   # finds .gpu/ and installs the wheels into /tmp/site
#
# Needs this checkout's .venv (make install) and ../shared beside the repo (NERLIT_SHARED_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED_DIR="${NERLIT_SHARED_DIR:-$(cd .. && pwd)/shared}"
PY=.venv/bin/python
BUNDLE=.gpu
LIMIT_MIB=64

grep -qxF "/$BUNDLE/" .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo "/$BUNDLE/" >> .git/info/exclude; }
rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/wheels" "$BUNDLE/data/gmb" "$BUNDLE/models"

echo "== wheels"
make -s wheel >/dev/null
cp dist/nerlit-*.whl "$BUNDLE/wheels/"
# versions as in this .venv, so the GPU run imports what the tests here ran with
pins=()
for name in hydra-core omegaconf antlr4-python3-runtime seqeval nervaluate; do
  pins+=("$name==$("$PY" -m pip show "$name" | sed -n 's/^Version: //p')")
done
"$PY" -m pip wheel -q --no-deps -w "$BUNDLE/wheels" "${pins[@]}"

echo "== data and models"
cp "$SHARED_DIR/data/gmb/ner_dataset.csv.gz" "$BUNDLE/data/gmb/"
cp -r "$SHARED_DIR/models/bert-base-cased-tokenizer" "$BUNDLE/models/"
MINILM_OUT="$BUNDLE/models/all-MiniLM-L6-v2"
mkdir -p "$MINILM_OUT"
for f in config.json tokenizer.json tokenizer_config.json special_tokens_map.json vocab.txt; do
  cp "$SHARED_DIR/models/all-MiniLM-L6-v2/$f" "$MINILM_OUT/"
done
chmod -R u+w "$BUNDLE"
"$PY" - "$SHARED_DIR/models/all-MiniLM-L6-v2" "$MINILM_OUT" <<'EOF'
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

source, target = Path(sys.argv[1]), Path(sys.argv[2])
weights = load_file(source / "model.safetensors")
save_file(
    {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in weights.items()},
    str(target / "model.safetensors"),
    metadata={"format": "pt"},
)
config = json.loads((target / "config.json").read_text())
config["dtype"] = "float32"
config.pop("torch_dtype", None)
(target / "config.json").write_text(json.dumps(config, indent=2) + "\n")
EOF

echo "== size"
travels=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 du -cb 2>/dev/null | tail -n 1 | cut -f1)
bundle=$(du -sb "$BUNDLE" | cut -f1)
total=$((travels + bundle))
printf 'checkout %.1f MiB + %s %.1f MiB = %.1f MiB (limit %d MiB)\n' \
  "$(echo "$travels / 1048576" | bc -l)" "$BUNDLE" "$(echo "$bundle / 1048576" | bc -l)" \
  "$(echo "$total / 1048576" | bc -l)" "$LIMIT_MIB"
if (( total > LIMIT_MIB * 1048576 )); then
  echo "too large to travel: the device tool takes at most $LIMIT_MIB MiB" >&2
  exit 1
fi
ls -la "$BUNDLE/wheels"
