#!/usr/bin/env bash
# Kill a world-model training mid-run (SIGKILL), resume it, and compare with the uninterrupted run.
set -u
DS=${1:?usage: docs/resume_check.sh DATASET [WORKDIR]}; W=${2:-/tmp/resume_check}
cd "$(dirname "$0")/.."
rm -rf $W && mkdir -p $W/a $W/b && cp models/*.* $W/a/ && cp models/*.* $W/b/
ARGS="--dataset $DS --steps 600 --finetune-steps 300 --batch 128 --checkpoint-every 100 --quiet"
.venv/bin/hjepa-agent train world-model $ARGS --out $W/a > $W/a.log 2>&1
setsid .venv/bin/hjepa-agent train world-model $ARGS --out $W/b > $W/b1.log 2>&1 &
PID=$!
while [ ! -f $W/b/runs/world-model/ckpt_0000300.pt ]; do sleep 1; done
sleep 8   # past the checkpoint, mid-way to the next one
kill -9 -- -$PID; wait $PID 2>/dev/null
echo "killed at: $(tail -1 $W/b/runs/world-model/metrics.csv | cut -d, -f1) (last checkpoint $(ls $W/b/runs/world-model/ | grep ckpt | tail -1))"
.venv/bin/hjepa-agent train world-model $ARGS --out $W/b --resume > $W/b2.log 2>&1
for f in world_encoder.onnx world_predictor.onnx; do
  echo "$f: $(sha256sum $W/a/$f | cut -c1-16) $(sha256sum $W/b/$f | cut -c1-16)"; done
diff <(cut -d, -f1,3- $W/a/runs/world-model/metrics.csv) <(cut -d, -f1,3- $W/b/runs/world-model/metrics.csv) && echo "metrics.csv: identical (wall time aside)"
.venv/bin/python - $W <<'PY'
import sys, yaml
w = sys.argv[1]
for r in ("a", "b"):
    m = yaml.safe_load(open(f"{w}/{r}/manifest.yaml"))["models"]["world_predictor"]["trained"]["metrics"]
    print(r, "calib_one_step_mse", m["calib_one_step_mse"], "final loss", m["history"]["loss"][-1])
PY
