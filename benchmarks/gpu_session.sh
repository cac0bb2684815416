#!/usr/bin/env bash
# The one device check of a session lent a GPU (15 minutes of device time in all, start-up
# included): the GPU presets of the two claim benchmarks, each under its own time limit. Both
# are resumable, so a second call continues where the first stopped; each finished subnet or
# network is in the *-cache.json files, and commands.log has every command's duration (what
# sizes the presets). Prepare here with benchmarks/gpu_prepare.sh, then
#   run(command="bash benchmarks/gpu_session.sh", carry=[".whl", ".fm"], timeout_s=600)
# RANKING_S and HEADLINE_S (seconds, default 270 each) split the time between the two;
# PRESET=smoke SKIP_WHEELS=1 tries the script on a CPU in a few minutes.
set -uo pipefail
OUT=${OUT:-runs/gpu-session}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 EDGESSL_CACHE=/tmp/edgessl-cache
if [ -z "${SKIP_WHEELS:-}" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH="$PWD:/tmp/site"
mkdir -p /usr/share/datasets/fashion-mnist && cp .fm/*.gz /usr/share/datasets/fashion-mnist/
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import sys, torch; print(sys.version.split()[0], torch.__version__,
torch.cuda.get_device_name(), torch.cuda.is_available())"
  nproc; date -u; } > "$OUT/machine.txt" 2>&1

bench() {  # NAME SECONDS: python benchmarks/NAME.py --preset PRESET under a time limit
    local work=/tmp/$1-${PRESET:-gpu}
    timeout "$2" python3 "benchmarks/$1.py" --preset "${PRESET:-gpu}" --work "$work" \
        --out "$OUT/$1-gpu.json" > "/tmp/$1-gpu.log" 2>&1
    echo "$1: exit $? after at most $2 s" >> "$OUT/machine.txt"
    tail -n 25 "/tmp/$1-gpu.log" >> "$OUT/machine.txt"
    cp "$work/results.json" "$OUT/$1-cache.json" 2>/dev/null
    cp "$work/commands.log" "$OUT/$1-commands.log" 2>/dev/null
}
bench ranking "${RANKING_S:-270}"
bench headline "${HEADLINE_S:-270}"
cat "$OUT/machine.txt"
