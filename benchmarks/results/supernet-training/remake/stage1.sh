# Stage 1 of the README's remake (two threads, as the shipped stage 1 was made), resumable:
#   bash benchmarks/results/supernet-training/remake/stage1.sh --resume
# Then: python benchmarks/remake_check.py runs/remake/fm-supernet/last.ckpt --reference runs/remake/stage1-32.ckpt
cd "$(dirname "$0")/../../../.." && edgessl train --data fashion-mnist --resolution 32 --num-sampled 1 \
    --epochs 3 --seed 0 --workers 0 --time-limit 1020 --out runs/remake/fm-supernet "$@"
