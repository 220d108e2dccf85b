#!/usr/bin/env bash
# GPU smoke test: the tiny model end to end on CUDA, in a few minutes.
#   1. SFT, 20 steps, bf16 autocast, on GPU 0;
#   2. GSPO, 3 rollout batches, vLLM on CUDA with in-place weight sync, bf16 autocast;
#      prints each batch's engine/trainer log-prob gap;
#   3. with 2+ GPUs: the same under torchrun, 2 ranks (FSDP2 over NCCL, colocated vLLM,
#      sleep mode on).
# Needs the GPU stack (GSPO_STACK=gpu make setup, or PY=... naming a Python that has torch
# with CUDA and vllm). Exits non-zero on any failure; writes under runs/gpu_smoke/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${GPU_SMOKE_OUT:-runs/gpu_smoke}
CLI=("$PY" -m gspo_repro.cli)
start=$(date +%s)

"$PY" - <<'EOF'
import torch
if not torch.cuda.is_available():
    raise SystemExit("gpu_smoke: torch sees no CUDA device (torch.cuda.is_available() is False)")
import transformers, vllm
print(f"gpu_smoke: torch {torch.__version__} (CUDA {torch.version.cuda}), transformers "
      f"{transformers.__version__}, vllm {vllm.__version__}; {torch.cuda.device_count()} x "
      f"{torch.cuda.get_device_name(0)}")
EOF
gpus=$("$PY" -c "import torch; print(torch.cuda.device_count())")
rm -rf "$OUT"

# the tiny RL settings: small batches, a resumable checkpoint every batch (its save path is
# exercised too), vLLM in place (a failed in-place load fails the smoke test)
RL=(--set rl.steps=3 --set rl.queries=16 --set rl.group_size=4 --set rl.max_new_tokens=64
    --set rl.families=[math] --set rl.engine=vllm --set rl.vllm_sync=inplace
    --set rl.autocast=bfloat16 --set rl.checkpoint_every=1)

report() {  # device, engine and per-batch engine/trainer gap of one RL run directory
  "$PY" - "$1" <<'EOF'
import json, math, sys
from pathlib import Path
out = Path(sys.argv[1])
run = json.loads((out / "run.json").read_text())
assert run["device"].startswith("cuda"), f"trained on {run['device']}, not a GPU"
print(f"gpu_smoke: {out}: device {run['device']}, world {run['world_size']}, engine "
      f"{run['engine']}")
for line in (out / "metrics.jsonl").read_text().splitlines():
    m = json.loads(line)
    for k in ("loss", "engine_gap_mean", "engine_gap_max", "reward_mean"):
        assert m[k] is not None and math.isfinite(m[k]), f"batch {m['step']}: {k} = {m[k]}"
    print(f"  batch {m['step']}: reward {m['reward_mean']:.3f}  clip {m['clip_frac']:.4f}  "
          f"engine-trainer |dlogp| mean {m['engine_gap_mean']:.2e} max "
          f"{m['engine_gap_max']:.2e}  rollout {m['time/rollout']:.1f}s  update "
          f"{m['time/update']:.1f}s  sync {m['time/sync']:.2f}s")
EOF
}

CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0} "${CLI[@]}" sft --set sft.steps=20 \
  --set sft.batch_size=32 --set sft.autocast=bfloat16 --out "$OUT/sft" --no-progress
"$PY" -c "import json,sys; d=json.load(open(sys.argv[1]))['device']; print('gpu_smoke: sft on', d); assert d.startswith('cuda'), d" "$OUT/sft/run.json"

CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0} "${CLI[@]}" rl --algo gspo \
  --init "$OUT/sft/checkpoint" --out "$OUT/rl_1gpu" "${RL[@]}" --no-progress
report "$OUT/rl_1gpu"

if [ "$gpus" -ge 2 ]; then
  CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES_2:-0,1} "$(dirname "$PY")/torchrun" --standalone \
    --nproc_per_node 2 -m gspo_repro.cli rl --algo gspo --init "$OUT/sft/checkpoint" \
    --out "$OUT/rl_2gpu" "${RL[@]}" --set rl.vllm_sleep=true --no-progress
  report "$OUT/rl_2gpu"
else
  echo "gpu_smoke: 1 GPU visible: the 2-rank torchrun variant was skipped"
fi
echo "gpu_smoke: passed in $(( $(date +%s) - start )) s"
