#!/usr/bin/env bash
# Every GPU check in one call, for a session lent a CUDA machine (the device tool's `run`):
#   bash benchmarks/gpu_checks.sh     (writes into $OUT under the device tool, else benchmarks/_gpu/)
# 1. the CUDA tests: models on CUDA in fp32, bf16 autocast and channels_last
#    (tests/test_models_extra.py and the `gpu` cells of nbs/02_models.ipynb);
# 2. the throughput benchmark at ImageNet-LT shape (224x224, 1,000 classes, generated JPEGs):
#    data loading, stage-1 and stage-2 step time (fp32 eager vs bf16 + channels_last), stage 1
#    end to end through the engine, the centroid and test passes; appended to RESULTS.md.
# Not yet run on a GPU: no session so far was lent one.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/_gpu}; mkdir -p "$OUT"
PY=${PY:-.venv/bin/python}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
$PY -m pytest -q --runslow tests/test_models_extra.py 2>&1 | tee "$OUT/tests.log"
"$(dirname "$PY")/nbdev-test" nbs/02_models.ipynb --flags gpu 2>&1 | tee -a "$OUT/tests.log"
$PY benchmarks/bench.py --images 4000 --workers 12 2>&1 | tee "$OUT/bench.log"
cp benchmarks/RESULTS.md "$OUT/RESULTS.md"
