# Stage 2 from the stage 1 remade on 2026-12-06 (AVX2 host), one thread on core 0; resumable.
cd "$(dirname "$0")/../../../.." && OMP_NUM_THREADS=1 taskset -c 0 edgessl train --data fashion-mnist \
    --init-from runs/remake/fm-supernet-32.ckpt --resolution 40 --num-sampled 1 --epochs 4 \
    --max-steps 2200 --lr 0.02 --seed 0 --workers 0 --out runs/remake/supernet-40-scratch "$@"
