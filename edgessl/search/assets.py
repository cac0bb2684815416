"""Make the supernet checkpoint shipped in the package from a training run.

Keeps what search needs (format, kind, space, config, resolution, step, backbone weights in
float16: half the size, and the scores it gives match the float32 weights' to rounding) and
drops the optimiser, SSL head and RNG states.

Usage: python -m edgessl.search.assets runs/fm-supernet/last.ckpt [DEST]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgessl.checkpoint import TRAIN_FORMAT, load_checkpoint, save_checkpoint
from edgessl.errors import EdgesslError

KEEP = ("format", "kind", "space", "model", "config", "resolution", "step")


def slim_supernet(src: str | Path, dest: str | Path) -> Path:
    """Write the slim, float16 copy of the supernet checkpoint ``src`` to ``dest``."""
    payload = load_checkpoint(src, expect=TRAIN_FORMAT, kind="supernet")
    slim = {k: payload[k] for k in KEEP if k in payload}
    slim["backbone"] = {k: (v.half() if v.is_floating_point() else v)
                        for k, v in payload["backbone"].items()}
    return save_checkpoint(dest, slim)


def main(argv: list[str] | None = None) -> int:
    """The command line: exit 2 with one line on a missing argument or a bad checkpoint."""
    from edgessl.search.run import default_supernet

    parser = argparse.ArgumentParser(prog="python -m edgessl.search.assets",
                                     usage=argparse.SUPPRESS, description=__doc__)
    parser.add_argument("src", help="supernet training checkpoint (RUN/last.ckpt)")
    parser.add_argument("dest", nargs="?", default=None,
                        help="where to write it (default: the package's asset)")
    args = parser.parse_args(argv)
    try:
        out = slim_supernet(args.src, args.dest or default_supernet())
    except EdgesslError as exc:
        sys.stderr.write(f"error: {' '.join(str(exc).split())}\n")
        return exc.exit_code
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
