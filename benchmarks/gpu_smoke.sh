#!/usr/bin/env bash
# The real-scale training path on every GPU of one node, end to end (not run in CI: it needs GPUs):
#   1. trains MODEL 30 steps under FSDP (configs/accelerate/fsdp-gpu.yaml) on every GPU;
#   2. trains it again, SIGKILLs that run after step 15, resumes it with `sftscope train --resume`,
#      and compares its 30 per-step losses with the uninterrupted run's;
#   3. prints each GPU's peak memory (nvidia-smi, sampled every second) next to `train --plan`.
#
#   benchmarks/gpu_smoke.sh MODEL [ENGINE]      e.g. benchmarks/gpu_smoke.sh Qwen/Qwen3-1.7B-Base
#
# MODEL: a local directory or a hub id already in the HF cache. ENGINE: trl (default) or sftscope.
# Exit code 0 when the resumed losses match to 1e-3 (GPU kernels are not bitwise deterministic).
set -euo pipefail

MODEL=${1:?usage: benchmarks/gpu_smoke.sh MODEL [ENGINE]}
ENGINE=${2:-trl}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GPUS=$(nvidia-smi -L | wc -l)
WORK=$(mktemp -d)
PYTHON=${PYTHON:-python}
echo "gpu_smoke: $MODEL, engine $ENGINE, $GPUS GPU(s), work dir $WORK"

# Addition questions with a short worked answer: the check is about the machinery, not the data.
"$PYTHON" - "$WORK/data" <<'PY'
import random, sys
from pathlib import Path
from sftscope.data.io import write_records
from sftscope.data.records import user_example
rng = random.Random(0)
rows = []
for _ in range(2048):
    a, b = rng.randint(0, 99999), rng.randint(0, 99999)
    steps = " ".join(f"carry {rng.randint(0, 9)}" for _ in range(rng.randint(20, 400)))
    rows.append(user_example(f"What is {a} + {b}?", reasoning=f"{a} plus {b}: {steps}", final=f"\\boxed{{{a + b}}}"))
write_records(rows, Path(sys.argv[1]) / "train.jsonl")
PY

cat > "$WORK/train.yaml" <<YAML
model: $MODEL
engine: $ENGINE
data: $WORK/data
out: $WORK/unused
preset: paper
batch_size: $((GPUS * 4))
steps: 30
max_length: 4096
micro_batch_tokens: 4096
schedule: {every: 5, log_spaced: false, steps: []}
progress: false
report_to: []
YAML

LAUNCH=("$PYTHON" -m accelerate.commands.launch --config_file "$ROOT/configs/accelerate/fsdp-gpu.yaml"
        --num_processes "$GPUS" "$(command -v sftscope)" train)

nvidia-smi --query-gpu=index,memory.used --format=csv,noheader,nounits -l 1 > "$WORK/memory.csv" &
SAMPLER=$!
trap 'kill $SAMPLER 2>/dev/null || true' EXIT

"${LAUNCH[@]}" "$WORK/train.yaml" "out=$WORK/reference" > /dev/null

setsid "${LAUNCH[@]}" "$WORK/train.yaml" "out=$WORK/killed" > /dev/null &  # its own process group
KILLED=$!
until [ -f "$WORK/killed/metrics.jsonl" ] && [ "$(wc -l < "$WORK/killed/metrics.jsonl")" -ge 16 ]; do
  kill -0 $KILLED 2>/dev/null || { echo "gpu_smoke: the run ended before step 16"; exit 1; }
  sleep 1
done
kill -9 -- -$KILLED  # the whole process group: launcher and every rank
wait $KILLED 2>/dev/null || true
echo "gpu_smoke: killed after step $(wc -l < "$WORK/killed/metrics.jsonl")"
"${LAUNCH[@]}" --resume "$WORK/killed" > /dev/null
kill $SAMPLER 2>/dev/null || true

STATUS=0
"$PYTHON" - "$WORK" <<'PY' || STATUS=$?
import json, sys
from pathlib import Path
work = Path(sys.argv[1])
rows = lambda run: [json.loads(line) for line in (work / run / "metrics.jsonl").read_text().splitlines()]
reference, resumed = rows("reference"), rows("killed")
assert [r["step"] for r in resumed] == list(range(1, 31)), [r["step"] for r in resumed]
worst = max(abs(a["loss"] - b["loss"]) for a, b in zip(reference, resumed))
print(f"losses: 30 steps, largest difference resumed vs uninterrupted {worst:.2e}")
peaks = {}
for line in (work / "memory.csv").read_text().splitlines():
    index, used = (int(x) for x in line.split(","))
    peaks[index] = max(peaks.get(index, 0), used)
print("peak memory per GPU (nvidia-smi, MiB): " + ", ".join(f"{i}: {m:,}" for i, m in sorted(peaks.items())))
sys.exit(0 if worst < 1e-3 else 1)
PY
echo "--plan for the same config on $GPUS GPU(s):"
sftscope train "$WORK/train.yaml" --plan --gpus "$GPUS"
exit $STATUS
