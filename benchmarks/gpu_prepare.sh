#!/usr/bin/env bash
# Here, before a session's one device check: what benchmarks/gpu_session.sh needs on the GPU
# machine that its image lacks (KINDS.md): pymoo and its pure-Python needs as cp312 wheels in
# .whl/, Fashion-MNIST's four files in .fm/ (30 MB; both folders are in .git/info/exclude and
# travel with `carry`). Then:
#   run(command="bash benchmarks/gpu_session.sh", carry=[".whl", ".fm"], timeout_s=600)
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx "/.whl/" .git/info/exclude 2>/dev/null || printf "/.whl/\n/.fm/\n" >> .git/info/exclude
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any -d .whl \
    pymoo==0.6.2 alive-progress about-time autograd cma deprecated moocore
mkdir -p .fm && cp /usr/share/datasets/fashion-mnist/*.gz .fm/
du -sh .whl .fm
