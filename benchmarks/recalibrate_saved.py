"""Re-fit saved re-calibration runs with each method, offline: no timing.

Each ``benchmarks/recalibrate.py --mode commands`` run measured ten re-calibration subnets (and
five held-out ones per resolution) in one command and 30 check subnets per resolution in the
next. Their measurements are kept: the re-fit's subnets in
``benchmarks/results/recalibrate-fits.json`` (``--collect LABEL=NEW_TABLE RESULTS`` adds a run
from the re-fitted table the run wrote and its results file), the check's in that results file.
This script re-fits every saved run's ten subnets with each method and scores the check's
subnets, so methods are compared on identical measurements. The subnets themselves were chosen
by the design of the day the run was made; only the fit differs.

    python benchmarks/recalibrate_saved.py [--write]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _machine import today, write_section
from _runs import fail
from recalibrate import ROOT, TABLE, refit

from edgessl.arch import Arch
from edgessl.cost.latency import LatencyTable
from edgessl.profile.check import score_networks
from edgessl.utils import atomic_write_text

FITS = ROOT / "benchmarks" / "results" / "recalibrate-fits.json"
SECTION = "recalibrate_saved"
METHODS = {"c(r) only": (), "c(r) + kernel factors": ("kernel",),
           "c(r) + kernel factors + size exponent (now)": ("kernel", "size")}


def collect(label: str, new_table: Path, results: Path) -> None:
    """Add one run: the re-fit subnets of ``new_table`` and the results file of its check."""
    fits = json.loads(FITS.read_text()) if FITS.is_file() else {}
    nets = [{k: n[k] for k in ("role", "arch", "measured")}
            for n in json.loads(new_table.read_text())["networks"]]
    if not any(n["role"] == "recalibrate" for n in nets):
        fail(f"{new_table} holds no re-calibration subnets")
    fits[label] = {"results": str(results.resolve().relative_to(ROOT)), "networks": nets}
    atomic_write_text(FITS, json.dumps(fits, indent=1) + "\n")


def refit_all(table: LatencyTable) -> dict:
    """Per run and method: the check's scores after re-fitting the run's ten subnets."""
    out = {}
    for label, run in json.loads(FITS.read_text()).items():
        checked = [n for n in json.loads((ROOT / run["results"]).read_text())["commands"]
                   ["networks"] if n["role"] == "check"]
        samples = [(Arch.from_dict(n["arch"]), n["measured"]["median_ms"])
                   for n in run["networks"] if n["role"] == "recalibrate"]
        out[label] = {}
        for name, terms in METHODS.items():
            res = score_networks(refit(table, samples, terms), [dict(n) for n in checked])
            out[label][name] = {r: {k: res[r][k] for k in ("within_10pct", "mape", "drift")}
                                for r in ("128", "224")}
    return out


def markdown(scores: dict) -> str:
    lines = ["### Every saved re-calibration run, re-fitted with each method", "",
             "Command: `python benchmarks/recalibrate_saved.py --write`  ",
             f"Date: {today()}; no timing (re-fits saved measurements).", "",
             "Within ±10% at 128 / 224 px of each run's 30 + 30 check subnets, after re-fitting "
             "that run's ten re-calibration subnets with each method:", "",
             "| run | " + " | ".join(METHODS) + " |", "|---|" + "---|" * len(METHODS)]
    for label, per in scores.items():
        cells = [f"{v['128']['within_10pct']:.1%} / {v['224']['within_10pct']:.1%}"
                 for v in per.values()]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--collect", nargs=2, metavar=("LABEL=NEW_TABLE", "RESULTS"),
                    help="add a run: its re-fitted table and its results file")
    ap.add_argument("--write", action="store_true", help="write the BENCHMARKS.md section")
    args = ap.parse_args()
    if args.collect:
        label, _, path = args.collect[0].partition("=")
        if not path or not Path(path).is_file() or not Path(args.collect[1]).is_file():
            fail(f"--collect {args.collect[0]} {args.collect[1]}: want LABEL=TABLE RESULTS, "
                 "both existing files")
        collect(label, Path(path), Path(args.collect[1]))
        return
    if not FITS.is_file():
        fail(f"{FITS} not found: --collect runs first")
    scores = refit_all(LatencyTable.load(TABLE))
    text = markdown(scores)
    atomic_write_text(FITS.with_name("recalibrate-saved.json"), json.dumps(scores, indent=1)
                      + "\n")
    print(text)
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
