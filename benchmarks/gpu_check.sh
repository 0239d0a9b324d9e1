#!/usr/bin/env bash
# One-shot GPU check (issue 9): the suite, a torch fp16 eager + compiled sweep at seq 384 over
# batch 1..256, the whole-dev evaluate (torch fp16, compiled, length-bucketed), and ONE summary
# (summary.md + summary.json) in the output folder, all within about 6 minutes.  Every step runs
# under `timeout`, so the summary is always written, with what each step did or why it stopped.
#
#   benchmarks/gpu_check.sh [--dry-run] [OUT_DIR]          (OUT_DIR default: $OUT, else ./results/gpu_check)
#
# Data: $ALBERT_IXRT_SHARED_DATA (default ./.gpudata if present, else ../shared/data), laid out as
#   albert-base-v2/config.json  albert-base-v2/spiece.model  squad/dev-v1.1.json
# Wheels: every .whl/*.whl (cp312; onnxruntime>=1.31, onnxsim, polygraphy, mlcommons-loadgen,
# check-jsonschema and what it needs that the image lacks) is installed with --target /tmp/site.
# --dry-run (or no GPU visible to torch): the same steps shrunk to seconds on the CPU, plan printed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DRY=0
if [[ "${1:-}" == "--dry-run" ]]; then DRY=1; shift; fi
OUTDIR=${1:-${OUT:-$ROOT/results/gpu_check}}
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
WORK=$(mktemp -d /tmp/gpu_check.XXXXXX)
LOG=$WORK/logs
mkdir -p "$LOG"
BUDGET=${GPU_CHECK_BUDGET_S:-345}     # seconds for all steps; the summary comes after
START=$SECONDS

# --- environment ----------------------------------------------------------------------------
if [[ -d .whl ]] && compgen -G ".whl/*.whl" >/dev/null && [[ $DRY == 0 ]]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        >"$LOG/pip.log" 2>&1 || echo "wheel install failed: see logs/pip.log" | tee -a "$LOG/pip.log"
    export PYTHONPATH=/tmp/site:$ROOT PATH=/tmp/site/bin:$PATH
else
    export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
fi
if [[ -z "${ALBERT_IXRT_SHARED_DATA:-}" ]]; then
    if [[ -d $ROOT/.gpudata ]]; then ALBERT_IXRT_SHARED_DATA=$ROOT/.gpudata; else ALBERT_IXRT_SHARED_DATA=$ROOT/../shared/data; fi
fi
export ALBERT_IXRT_SHARED_DATA HF_HUB_OFFLINE=1 ALBERT_IXRT_OFFLINE=1 ALBERT_IXRT_CACHE=$WORK/cache
export TORCHINDUCTOR_CACHE_DIR=$WORK/inductor PYTHONUNBUFFERED=1
DATA=$ALBERT_IXRT_SHARED_DATA
CFG=$DATA/albert-base-v2/config.json
for f in "$CFG" "$DATA/albert-base-v2/spiece.model" "$DATA/squad/dev-v1.1.json"; do
    [[ -f $f ]] || echo "missing data file: $f (set ALBERT_IXRT_SHARED_DATA)" | tee -a "$LOG/setup.log"
done

GPU=$(python3 -c 'import torch; print(int(torch.cuda.is_available()))' 2>>"$LOG/setup.log" || echo 0)
if [[ $GPU != 1 ]]; then DRY=1; fi
BATCHES="1 2 4 8 16 32 64 128 256"
# Compiled: one compile per shape (15-60 s each), so the points the targets need come first and a
# time-out cuts the least useful ones.
CBATCHES="1 256 128 64 32 16 8 4 2"
if [[ $DRY == 1 ]]; then
    # CPU plumbing check: the tiny model in fp32 (CPU fp16 is emulated, minutes per call), tiny sizes,
    # collect-only suite, one compiled shape, no compile for the evaluation.
    DEVICE=cpu; PREC=fp32; MODEL=(--model tiny); BATCHES="1 2"; CBATCHES=1; SEQ=64
    ITER=(--warmup 1 --iterations 2 --max-seconds 2 --examples 4)
    EVAL=(--device cpu --limit 8 --batch-size 4); SUITE=(--co -q); PERF=(--co -q)
    COMPILE_MODE=default
else
    DEVICE=cuda; PREC=fp16; MODEL=(--model "$CFG" --random-weights); SEQ=384
    ITER=(--warmup 3 --iterations 20 --max-seconds 3)
    EVAL=(--device cuda --compile --batch-size 256); SUITE=(-q -n 8); PERF=(-q)
    COMPILE_MODE=reduce-overhead
fi
if [[ $DRY == 0 ]] && ! python3 -c 'import xdist' 2>/dev/null; then
    SUITE=(-q); echo "pytest-xdist missing: the suite runs in one process" | tee -a "$LOG/setup.log"
fi
CLI=(python3 -m albert_ixrt.cli)
BENCH=("${CLI[@]}" bench "${MODEL[@]}" --backend torch --precision "$PREC" --device "$DEVICE"
       --seq-len "$SEQ" --transfers both "${ITER[@]}")

left() { echo $(( BUDGET - (SECONDS - START) )); }
# step NAME CAP_SECONDS CMD...: runs CMD under timeout min(CAP, time left), logs to logs/NAME.log
step() {
    local name=$1 cap=$2; shift 2
    local t; t=$(left); (( t > cap )) && t=$cap
    if (( t < 5 )); then echo "$name skipped: no time left" | tee "$LOG/$name.log"; echo "$name 0 skipped" >>"$WORK/steps"; return; fi
    echo "== $name (timeout ${t}s): $*" | tee "$LOG/$name.log"
    local t0=$SECONDS
    timeout --kill-after=10 "$t" "$@" >>"$LOG/$name.log" 2>&1
    local rc=$?
    echo "$name $((SECONDS - t0)) $rc" >>"$WORK/steps"
    echo "   rc=$rc after $((SECONDS - t0)) s" | tee -a "$LOG/$name.log"
}

echo "gpu_check: out=$OUTDIR data=$DATA device=$DEVICE precision=$PREC model=${MODEL[*]} dry_run=$DRY budget=${BUDGET}s batches=[$BATCHES] seq=$SEQ"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || true
  python3 - <<'EOF'
import importlib
for name in ("torch", "transformers", "onnx", "onnxruntime", "onnxsim", "polygraphy", "mlperf_loadgen", "sentencepiece",
             "numpy", "pytest", "xdist", "hypothesis"):
    try:
        m = importlib.import_module(name)
        print(f"{name} {getattr(m, '__version__', '?')} {getattr(m, '__file__', '')}")
    except Exception as exc:  # report, never stop the check
        print(f"{name} MISSING ({type(exc).__name__}: {exc})")
EOF
} >"$LOG/environment.log" 2>&1
cat "$LOG/environment.log"

# --- 1. perf tests, serial and alone (timings must not share the CPU with the suite) ------------
step perf 75 python3 -m pytest "${PERF[@]}" tests/perf tests/selftest/perf -p no:xdist -p no:cacheprovider --junitxml="$OUTDIR/junit-perf.xml"
# --- 2. conversion / accuracy / unit suite, alone: its torch tests use the GPU too, so run beside
# the sweeps it made their timings jitter (first GPU run: batch 1 with copies p50 1.5 ms, p90 5.8 ms).
# Each xdist worker builds its own session fixtures with torch's default of one thread per core:
# 8 workers x 16 threads timed out at 120 s in the second H200 run (70% done), so 2 threads each.
OMP_NUM_THREADS=2 step suite 150 python3 -m pytest "${SUITE[@]}" -m "not perf" -p no:cacheprovider \
    --junitxml="$OUTDIR/junit.xml"
# --- 3. torch fp16 sweep, eager then compiled (results written after every point) ---------------
# shellcheck disable=SC2086
step bench_eager 40 "${BENCH[@]}" --batch-size $BATCHES --json "$WORK/bench_eager.json"
# shellcheck disable=SC2086
step bench_compiled 75 "${BENCH[@]}" --batch-size $CBATCHES --compile --compile-mode "$COMPILE_MODE" \
    --json "$WORK/bench_compiled.json"
# --- 4. whole dev set, compiled and bucketed (wall after load, compile apart) -------------------
step evaluate 70 "${CLI[@]}" evaluate "${MODEL[@]}" --backend torch --precision "$PREC" \
    "${EVAL[@]}" --quiet --out "$WORK/eval"
# --- 5. peak throughput with GEMM autotuning, if time is left ---------------------------------
if [[ $DRY == 0 ]] && (( $(left) > 75 )); then
    step bench_autotune 70 "${BENCH[@]}" --batch-size 256 --transfers device_only --compile \
        --compile-mode max-autotune-no-cudagraphs --json "$WORK/bench_autotune.json"
fi

# --- summary ----------------------------------------------------------------------------------
python3 benchmarks/gpu_summary.py --work "$WORK" --out "$OUTDIR" --dry-run "$DRY" --elapsed $((SECONDS - START)) \
    2>&1 | tee "$LOG/summary.log"
tar -czf "$OUTDIR/logs.tar.gz" -C "$WORK" logs $(cd "$WORK" && ls -d bench_*.json eval 2>/dev/null) 2>/dev/null
echo "gpu_check: done in $((SECONDS - START)) s; files in $OUTDIR: $(ls "$OUTDIR" | tr '\n' ' ')"
