#!/usr/bin/env bash
# Every GPU check in one call that ends within 6 minutes on one H100 or H200 (the device tool's `run`:
#   command "bash benchmarks/gpu_checks.sh", carry [".whl"], timeout_s 420):
#   1. set-up: the machine's own python3 (torch, torchvision) with PYTHONPATH = the checkout + the wheels
#      it lacks (fastcore), installed from the git-ignored .whl/ folder. Made on a machine with network:
#        python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#            --platform manylinux_2_28_x86_64 -d .whl fastcore
#   2. the CUDA tests: device input against the official pipeline in float16 on the GPU, the prefetcher's
#      thread and side stream, the engine's two stages with device input, bf16/channels_last, CUDA graphs;
#   3. the benchmark at ImageNet-LT shape (generated JPEGs, a process pool over the cores): loading, step
#      rates, stages 1 and 2 end to end, centroid and test passes, wall times, peak memory -> RESULTS.md,
#      ending with `end-to-end / step-only: stage 1 0.NN, stage 2 0.NN (CARD)`;
#   4. oltr-train under torchrun (1 process, NCCL), OLTR on digits_lt, both stages, 2 epochs each;
#   5. oltr-train on CUDA with --cuda-graphs, the same run;
#   6. with the time left: torch.compile and CUDA graphs against eager, step rates only -> RESULTS.md.
# Each part has its own time limit, so the whole ends within 6 minutes (DEADLINE) whatever hangs; logs in $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/_gpu}; mkdir -p "$OUT"
PY=${PY:-python3}
DEADLINE=${DEADLINE:-350}  # seconds from now by which everything has ended
export PYTHONUNBUFFERED=1
START=$SECONDS
left() { echo $(( DEADLINE - (SECONDS - START) )); }
part() {  # part NAME SECONDS COMMAND...: run with a limit (never past the deadline), log to $OUT/NAME.log
  local name=$1 limit=$2; shift 2
  (( limit > $(left) )) && limit=$(left)
  if (( limit < 5 )); then echo "== $name: skipped, no time left" | tee -a "$OUT/summary.txt"; return; fi
  local t0=$SECONDS
  timeout --kill-after=5 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "== $name: exit $rc after $((SECONDS - t0)) s (limit $limit s)" | tee -a "$OUT/summary.txt"
  tail -n 25 "$OUT/$name.log"
}

S=$(mktemp -d)
[ -d .whl ] && $PY -m pip install -q --no-index --no-deps --target "$S" .whl/*.whl
export PYTHONPATH=$PWD:$S
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
$PY -c "import torch, torchvision, fastcore; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'fastcore', fastcore.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/gpu.txt"

part tests 75 $PY -m pytest -q -p no:cacheprovider --runslow -k cuda tests/test_gpu_input.py tests/test_models_extra.py
part bench 150 $PY benchmarks/bench.py --images 4000 --peak-tflops 790
A=(--dataset digits_lt --method oltr --epochs 2 --device cuda)
part torchrun 40 $PY -m torch.distributed.run --nproc_per_node 1 -m oltr_nb.train "${A[@]}" --out-dir "$OUT/runs_ddp"
part cuda_graphs_train 60 $PY -m oltr_nb.train "${A[@]}" --cuda-graphs --out-dir "$OUT/runs_graphs"
part compile_steps 300 $PY benchmarks/bench.py --steps-only --compile --cuda-graphs
$PY -c "import glob, json; [print(p, 'closed top1', json.load(open(p))['closed']['top1']) for p in sorted(glob.glob('$OUT/runs_*/**/metrics.json', recursive=True))]" | tee -a "$OUT/summary.txt"
cp benchmarks/RESULTS.md "$OUT/RESULTS.md"
echo "total $((SECONDS - START)) s" | tee -a "$OUT/summary.txt"
