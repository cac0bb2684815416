"""Make the supernet checkpoint shipped in the package from a training run.

Keeps what search needs (format, kind, space, config, resolution, step, backbone weights in
float16: half the size, and the scores it gives match the float32 weights' to rounding) and
drops the optimiser, SSL head and RNG states.

Usage: python -m edgessl.search.assets runs/fm-supernet/last.ckpt [DEST]
"""

from __future__ import annotations

import sys
from pathlib import Path

from edgessl.checkpoint import TRAIN_FORMAT, load_checkpoint, save_checkpoint

KEEP = ("format", "kind", "space", "model", "config", "resolution", "step")


def slim_supernet(src: str | Path, dest: str | Path) -> Path:
    """Write the slim, float16 copy of the supernet checkpoint ``src`` to ``dest``."""
    payload = load_checkpoint(src, expect=TRAIN_FORMAT)
    slim = {k: payload[k] for k in KEEP if k in payload}
    slim["backbone"] = {k: (v.half() if v.is_floating_point() else v)
                        for k, v in payload["backbone"].items()}
    return save_checkpoint(dest, slim)


if __name__ == "__main__":
    from edgessl.search.run import default_supernet

    out = slim_supernet(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else default_supernet())
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
