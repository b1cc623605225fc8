#!/usr/bin/env bash
# The GPU path, checked in one go on a machine with a GPU (under 8 minutes):
#   bash experiments/gpu_check.sh [MNIST_DIR]      (default ../shared/data/mnist)
# 1. the devices TensorFlow sees and the mixed policy gan-nas picks for them;
# 2. bench_train.py: the candidate path in float32 and in the mixed policy (no FID);
# 3. a short search with the process pool, one candidate per GPU, and its summary.
# Nothing here runs without a GPU: it stops at step 1 and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
mnist="${1:-../shared/data/mnist}"
out="$(mktemp -d)"
export TF_CPP_MIN_LOG_LEVEL=2

command -v nvidia-smi >/dev/null && nvidia-smi -L || true
python3 - <<'PY'
import sys
import tensorflow as tf
from gan_nas import precision
gpus = tf.config.list_physical_devices("GPU")
for g in gpus:
    print(g.name, tf.config.experimental.get_device_details(g))
print("mixed policy:", precision.policy(True))
sys.exit(0 if gpus else "no GPU visible to TensorFlow: nothing to check")
PY

timeout 240 python3 experiments/bench_train.py --rounds 2 --steps 30 --fid-steps 0 --data-dir "$mnist"

workers=$(python3 -c "import tensorflow as tf; print(max(1, len(tf.config.list_physical_devices('GPU'))))")
time timeout 300 gan-nas search --config experiments/bench_search.toml --run-dir "$out/run" --quiet --json \
  --set data.dataset=mnist --set "data.data_dir=\"$mnist\"" --set run.executor=process \
  --set run.workers="$workers" --set run.threads=2 --set search.generations=1 --set search.population=2 \
  --set search.offspring=2 --set training.mixed_precision=true --set run.gpus_per_candidate=1
echo "run directory: $out/run"
