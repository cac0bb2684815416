"""Does the shipped supernet know more than random weights? Issue 15, items 1 and 2.

For the shipped checkpoint (or ``--supernet``), through the CLI exactly as a user runs it:
``edgessl eval CKPT --data fashion-mnist --arch largest|smallest --protocol knn --bank-size
10000 --test-size 10000``, trained and ``--init random`` (same resolution: the checkpoint's),
next to raw-pixel kNN on the same bank and test images; then the largest subnet, trained and
random, on a labelled folder the supernet never saw (``--unseen``, default the texture patches
of ``benchmarks/make_unseen.py``; its val/ split is the test set).

    python benchmarks/make_unseen.py --out runs/unseen-textures
    python benchmarks/supernet_quality.py --write
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import machine, publish, repo_relative, today  # noqa: E402
from _runs import command_line, evaluate  # noqa: E402
from ssl_quality import raw_pixel_knn  # noqa: E402

from edgessl.search.run import default_supernet  # noqa: E402
from edgessl.utils import atomic_write_text  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "supernet_quality.json"


def render(result: dict, args) -> list[str]:
    """The BENCHMARKS.md section for ``result``."""
    rows, raw = result["rows"], result["raw_pixels_fashion_mnist"]
    shown = repo_relative(args.supernet)
    lines = ["## Shipped supernet: trained vs random init vs raw pixels", "",
             "`python benchmarks/supernet_quality.py --write` on "
             f"{result['date']}; {result['machine']}. Checkpoint `{shown}`; "
             "kNN (k=20, BN re-estimated on the bank) at the checkpoint's resolution, trained "
             "and at random init (`--init random`, seed "
             f"{args.seed}); raw pixels on the same Fashion-MNIST bank/test: "
             f"**{100 * raw:.2f}%**.", "",
             "| data | subnet | bank / test | trained | random init | gain (points) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        name = Path(r["data"]).name
        lines.append(f"| {name} | {r['arch']} | {r['bank']} / {r['test']} | "
                     f"{100 * r['trained']:.2f}% | {100 * r['random']:.2f}% | "
                     f"{r['gain_points']:+.2f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--supernet", type=Path, default=Path(default_supernet()))
    ap.add_argument("--unseen", type=Path, default=ROOT / "runs" / "unseen-textures")
    ap.add_argument("--bank", type=int, default=10000)
    ap.add_argument("--test", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "supernet-quality")
    ap.add_argument("--write", action="store_true",
                    help="write the results JSON and BENCHMARKS.md (default: print only)")
    ap.add_argument("--render", action="store_true",
                    help="only (re)write the section from the saved results JSON")
    args = ap.parse_args()
    if args.render:
        publish("supernet_quality", render(json.loads(RESULTS.read_text()), args), args.write)
        return
    args.work.mkdir(parents=True, exist_ok=True)
    log = args.work / "commands.log"
    rows = []
    sets = [("fashion-mnist", ("largest", "smallest"), ["--bank-size", args.bank,
                                                          "--test-size", args.test])]
    if args.unseen.is_dir():
        sets.append((str(args.unseen), ("largest", "smallest"), []))
    for data, archs, sizes in sets:
        for arch in archs:
            row = {"data": data, "arch": arch}
            for init in ("trained", "random"):
                extra = ["--arch", arch, "--protocol", "knn", "--init", init,
                         "--seed", args.seed, *sizes]
                r = evaluate(args.supernet, data, log, *extra)
                row[init] = r["knn"]
                row[f"{init}_command"] = command_line(["eval", args.supernet, "--data", data,
                                                       *extra])
                row.update(resolution=r["resolution"], bank=r["bank_size"], test=r["test_size"])
            row["gain_points"] = round(100 * (row["trained"] - row["random"]), 2)
            rows.append(row)
            print(json.dumps(row), flush=True)
    raw = raw_pixel_knn(args.bank, args.test)
    result = {"date": today(), "machine": machine(), "supernet": str(args.supernet),
              "raw_pixels_fashion_mnist": raw, "rows": rows}
    if args.write:  # without --write: printed only, the committed results stay as they are
        atomic_write_text(RESULTS, json.dumps(result, indent=1) + "\n")
    publish("supernet_quality", render(result, args), args.write)


if __name__ == "__main__":
    main()
