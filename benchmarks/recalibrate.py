"""Issue 20 acceptance 3: re-fit the shipped latency table here from 10 subnets, then check it on
30 other fresh subnets per resolution; the same check subnets are scored by the shipped table
too (one measurement, two tables: before and after side by side).

Runs the two commands a user runs (subprocesses, ``--json``)::

    edgessl profile --recalibrate TABLE --subnets 10 --out NEW --threads 1 --json
    edgessl profile --check NEW --subnets 30 --resolution 128 --resolution 224 --threads 1 --json

and writes benchmarks/results/recalibrate.json and (``--write``) the BENCHMARKS.md section
``recalibrate``. Takes ~15 minutes on one core of the dev machine (most of it exporting).

    OMP_NUM_THREADS=1 python benchmarks/recalibrate.py [--subnets 10] [--check 30] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import BENCHMARKS, machine, today, write_section

from edgessl.cost.latency import LatencyTable
from edgessl.profile.check import score_networks
from edgessl.utils import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "latency_tables" / "mobilenet-onnxruntime-cpu-xeon-t1-b1-fp32.json"
RESULTS = ROOT / "benchmarks" / "results" / "recalibrate.json"
SECTION = "recalibrate"


def edgessl(*args: str) -> dict:
    """Run ``edgessl ARGS --json`` with one OpenMP thread; its JSON report."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "edgessl", *map(str, args), "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", type=Path, default=TABLE)
    ap.add_argument("--new", type=Path, help="where the re-fitted table goes (default: a temp "
                                             "file)")
    ap.add_argument("--subnets", type=int, default=10)
    ap.add_argument("--check", type=int, default=30)
    ap.add_argument("--resolution", type=int, action="append", default=None)
    ap.add_argument("--write", action="store_true", help="write the BENCHMARKS.md section")
    args = ap.parse_args()
    resolutions = args.resolution or [128, 224]
    tmp = tempfile.mkdtemp(prefix="edgessl-recal-")
    new = args.new or Path(tmp) / "recalibrated.json"
    t0 = time.time()
    recal = edgessl("profile", "--recalibrate", args.table, "--subnets", args.subnets,
                    "--out", new, "--threads", 1, "--plot", Path(tmp) / "recal.png")
    t1 = time.time()
    res_args = [a for r in resolutions for a in ("--resolution", r)]
    check = edgessl("profile", "--check", new, "--subnets", args.check, *res_args,
                    "--threads", 1, "--plot", Path(tmp) / "check.png")
    t2 = time.time()
    shipped = LatencyTable.load(args.table)
    before = score_networks(shipped, [dict(n) for n in check["networks"]])
    result = {
        "date": today(), "machine": machine(), "table": str(args.table.relative_to(ROOT)),
        "table_device": recal["table_device"], "device": recal["device"],
        "table_backend_version": recal["table_backend_version"],
        "backend_version": recal["backend_version"], "clock": recal["clock"],
        "timing": recal["timing"],
        "commands": [f"edgessl profile --recalibrate {args.table.relative_to(ROOT)} --subnets "
                     f"{args.subnets} --out NEW --threads 1",
                     f"edgessl profile --check NEW --subnets {args.check} "
                     f"{' '.join(map(str, res_args))} --threads 1"],
        "minutes": {"recalibrate": round((t1 - t0) / 60, 1), "check": round((t2 - t1) / 60, 1)},
        "recalibrate": {k: recal[k] for k in ("subnets", "held_out_per_resolution",
                                              "corrections", "before", "after")},
        "check": {"subnets_per_resolution": args.check, "seed": check["seed"],
                  "before_shipped_table": before, "after_recalibrated_table": check["results"],
                  "networks": check["networks"]},
    }
    save(RESULTS, result, SECTION, markdown(result), args.write)


def save(results: Path, result: dict, section: str, text: str, write: bool) -> None:
    """Raw results to ``results``; the section printed and, with ``write``, put into
    BENCHMARKS.md (its marker appended at the end the first time)."""
    results.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(results, json.dumps(result, indent=1) + "\n")
    print(text)
    if write:
        if f"<!-- section:{section} -->" not in BENCHMARKS.read_text():
            atomic_write_text(BENCHMARKS, BENCHMARKS.read_text().rstrip("\n")
                              + f"\n\n<!-- section:{section} -->\n")
        write_section(section, text)


def goal_line(after: dict) -> str:
    """Issue 20 acceptance 3: at least 95% within +-10% at 128 and 224 px."""
    shares = {k: after[k]["within_10pct"] for k in ("128", "224") if k in after}
    met = len(shares) == 2 and min(shares.values()) >= 0.95
    text = ", ".join(f"{k} px {v:.1%}" for k, v in shares.items())
    return (f"Goal (issue 20, acceptance 3): at least 95% within ±10% at 128 and 224 px: "
            f"**{'met' if met else 'missed'}** ({text}).")


def markdown(r: dict) -> str:
    def row(res: str, b: dict, a: dict) -> str:
        return (f"| {res} | {a['n']} | {b['within_10pct']:.1%} → **{a['within_10pct']:.1%}** | "
                f"{b['within_5pct']:.1%} → {a['within_5pct']:.1%} | {b['mape']:.2%} → "
                f"{a['mape']:.2%} | {b['spearman']:.3f} → {a['spearman']:.3f} | "
                f"{b['drift']:.3f} → {a['drift']:.3f} |")

    head = ("| resolution | n | within ±10% | within ±5% | MAPE | Spearman | drift "
            "(measured / predicted) |\n|---|---|---|---|---|---|---|")
    rc, ck = r["recalibrate"], r["check"]
    corr = ", ".join(f"{k} px ×{v:.3f}" for k, v in rc["corrections"].items())
    lines = [
        "## Latency table: check and re-calibration on this machine", "",
        f"Command: `OMP_NUM_THREADS=1 python benchmarks/recalibrate.py --write` on {r['date']}; "
        f"{r['machine']}; raw results in `benchmarks/results/recalibrate.json`. It runs:", "",
        *[f"    {c}" for c in r["commands"]], "",
        f"Table `{r['table']}`: measured on {r['table_device']} with "
        f"{r['table_backend_version']}; now {r['device']}, {r['backend_version']}; clock "
        f"`{r['clock']}` (thread CPU time: another process was training on the other core), "
        f"{r['timing']['net_runs']} timed runs per subnet over {r['timing']['rounds']} rounds. "
        f"Every subnet is exported as `edgessl export` does and timed as `edgessl bench` does.",
        "",
        f"**Check on {ck['subnets_per_resolution']} fresh subnets per resolution** (none used "
        "to fit either table), the same measurements scored by the shipped table (before) and "
        "the re-calibrated one (after):", "", head,
        *[row(k, ck["before_shipped_table"][k], v)
          for k, v in ck["after_recalibrated_table"].items()], "",
        goal_line(ck["after_recalibrated_table"]), "",
        f"**Re-calibration** from {rc['subnets']} subnets dealt over the table's resolutions "
        f"({r['minutes']['recalibrate']} min); corrections c(r): {corr}. Its own "
        f"{rc['held_out_per_resolution']} held-out subnets per resolution, before → after:", "",
        head, *[row(k, rc["before"][k], v) for k, v in rc["after"].items()], "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
