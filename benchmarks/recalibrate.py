"""Issue 20 acceptance 3: re-fit the shipped latency table here from 10 subnets, then check it on
30 other fresh subnets per resolution, before (shipped table) and after (re-fitted table).

Two modes, results of both kept in benchmarks/results/recalibrate.json:

- ``--mode commands``: the two commands a user runs, one after the other (subprocesses)::

      edgessl profile --recalibrate TABLE --subnets 10 --out NEW --threads 1 --json
      edgessl profile --check NEW --subnets 30 --resolution 128 --resolution 224 --threads 1

  The check's subnets are also scored by the shipped table (same measurements).
- ``--mode window``: the same fresh subnets (recalibrate's 10, check's 30 per resolution),
  exported and timed by the same functions, but all measured in one interleaved chunk and then
  fitted (on the 10) and scored (on the others): one measurement window, so a machine whose
  speed drifts between two commands (a shared one does) hits fit and check alike.

``--write`` renders both into the BENCHMARKS.md section ``recalibrate``. Each mode takes ~15
minutes on one core of the dev machine, most of it exporting.

    OMP_NUM_THREADS=1 python benchmarks/recalibrate.py --mode commands|window [--write]
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
from _runs import fail

from edgessl.cost.latency import LatencyTable
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


def run_commands(args: argparse.Namespace, res_args: list) -> dict:
    from edgessl.profile.check import score_networks

    tmp = Path(tempfile.mkdtemp(prefix="edgessl-recal-"))
    new = args.new or tmp / "recalibrated.json"
    t0 = time.time()
    recal = edgessl("profile", "--recalibrate", args.table, "--subnets", args.subnets,
                    "--out", new, "--threads", 1, "--plot", tmp / "recal.png",
                    "--seed", args.seed)
    t1 = time.time()
    check = edgessl("profile", "--check", new, "--subnets", args.check, *res_args,
                    "--threads", 1, "--plot", tmp / "check.png", "--seed", args.seed)
    t2 = time.time()
    checked = [dict(n) for n in check["networks"] if n["role"] == "check"]
    before = score_networks(LatencyTable.load(args.table), checked)
    rel = args.table.relative_to(ROOT)
    return {
        "header": {k: recal[k] for k in ("table_device", "device", "table_backend_version",
                                         "backend_version", "clock", "timing")},
        "commands": [f"edgessl profile --recalibrate {rel} --subnets {args.subnets} --out NEW "
                     f"--threads 1 --seed {args.seed}",
                     f"edgessl profile --check NEW --subnets {args.check} "
                     f"{' '.join(map(str, res_args))} --threads 1 --seed {args.seed}"],
        "minutes": {"recalibrate": round((t1 - t0) / 60, 1), "check": round((t2 - t1) / 60, 1)},
        "recalibrate": {k: recal.get(k) for k in ("subnets", "held_out_per_resolution",
                                                  "corrections", "kernel_factors",
                                                  "size_exponent", "before", "after")},
        "host_speed": check.get("host_speed"),
        "after_at_fit_speed": check.get("results_at_table_speed"),
        "before": before, "after": check["results"], "networks": check["networks"],
        "timing_noise": {"recalibrate": recal.get("timing_noise"),
                         "check": check.get("timing_noise")},
    }


VARIANTS = {  # (re-calibration subnets, shape terms): the window mode's ablation
    "random, c(r) only": ("random", ()),
    "random, c(r) + kernel factors + size exponent": ("random", ("kernel", "size")),
    "designed, c(r) only": ("designed", ()),
    "designed, c(r) + kernel factors": ("designed", ("kernel",)),
    "designed, c(r) + kernel factors + size exponent (shipped)": ("designed",
                                                                  ("kernel", "size"))}


def refit(table: LatencyTable, samples: list, terms: tuple[str, ...]) -> LatencyTable:
    """The re-calibrated table with only ``terms`` of the shape terms (``()``: one correction
    per resolution, the method before them)."""
    from edgessl.profile.recalibration import recalibrated_overhead

    return LatencyTable(dict(table.meta), table.entries,
                        recalibrated_overhead(table, samples, terms))


def run_window(args: argparse.Namespace, resolutions: list[int]) -> dict:
    from edgessl.profile import check as chk

    table = LatencyTable.load(args.table)
    s = chk.CheckSettings(seed=args.seed, net_chunk=10_000)
    t0 = time.time()
    res = [int(r) for r in table.meta["resolutions"]]
    cal = {"random": chk.fresh_archs(table, chk.spread(args.subnets, res), s.seed,
                                     chk.TAG_RECALIBRATE),
           "designed": chk.recalibration_archs(table, args.subnets, res, s.seed)}
    fitted = {a.to_json() for archs in cal.values() for a in archs}
    fresh = chk.fresh_archs(table, {r: args.check for r in resolutions}, s.seed, chk.TAG_CHECK,
                            exclude=fitted)
    unique = {a.to_json(): a for archs in cal.values() for a in archs}
    timing = {k: table.meta["timing"][k] for k in ("net_runs", "rounds", "warmup")}
    nets = chk.measure_archs(table, [("recalibrate", a) for a in unique.values()]
                             + [("check", a) for a in fresh], timing, s)
    ms = {chk.Arch.from_dict(n["arch"]).to_json(): n["measured"]["median_ms"] for n in nets}
    checked = [n for n in nets if n["role"] == "check"]
    before = chk.score_networks(table, [dict(n) for n in checked])
    variants = {}
    for name, (design, terms) in VARIANTS.items():
        samples = [(a, ms[a.to_json()]) for a in cal[design]]
        new = refit(table, samples, terms)
        variants[name] = {"corrections": new.overhead["corrections"],
                          "kernel_factors": new.overhead.get("kernel_factors", {}),
                          "after": chk.score_networks(new, [dict(n) for n in checked])}
    shipped = variants["designed, c(r) + kernel factors + size exponent (shipped)"]
    return {"minutes": round((time.time() - t0) / 60, 1), "subnets": args.subnets,
            "seed": s.seed, "corrections": shipped["corrections"],
            "kernel_factors": shipped["kernel_factors"], "before": before,
            "after": shipped["after"], "variants": variants, "networks": nets,
            "timing": timing}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=["commands", "window"], default="commands")
    ap.add_argument("--table", type=Path, default=TABLE)
    ap.add_argument("--new", type=Path, help="commands: where the re-fitted table goes "
                                             "(default: a temp file)")
    ap.add_argument("--subnets", type=int, default=10)
    ap.add_argument("--check", type=int, default=30)
    ap.add_argument("--resolution", type=int, action="append", default=None)
    ap.add_argument("--seed", type=int, default=1,
                    help="commands: the fresh subnets' seed (both commands; 1 is their default)")
    ap.add_argument("--write", action="store_true", help="write the BENCHMARKS.md section")
    ap.add_argument("--render", action="store_true",
                    help="measure nothing: render the section from the saved results")
    args = ap.parse_args()
    if args.seed < 0:
        fail(f"--seed {args.seed} must be at least 0")
    resolutions = args.resolution or [128, 224]
    res_args = [a for r in resolutions for a in ("--resolution", r)]
    result = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    if args.render:
        save(RESULTS, result, SECTION, markdown(result), args.write)
        return
    result["table"] = str(args.table.relative_to(ROOT))
    part = run_commands(args, res_args) if args.mode == "commands" else run_window(args,
                                                                                  resolutions)
    result[args.mode] = {"date": today(), "machine": machine(), "check_per_resolution":
                         args.check, **part}
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


HEAD = ("| resolution | n | within ±10% | within ±5% | MAPE | Spearman | drift "
        "(measured / predicted) |\n|---|---|---|---|---|---|---|")


def rows(before: dict, after: dict) -> list[str]:
    out = []
    for res, a in after.items():
        b = before[res]
        out.append(f"| {res} | {a['n']} | {b['within_10pct']:.1%} → **{a['within_10pct']:.1%}** "
                   f"| {b['within_5pct']:.1%} → {a['within_5pct']:.1%} | {b['mape']:.2%} → "
                   f"{a['mape']:.2%} | {b['spearman']:.3f} → {a['spearman']:.3f} | "
                   f"{b['drift']:.3f} → {a['drift']:.3f} |")
    return out


def goal_line(after: dict) -> str:
    """Issue 20 acceptance 3: at least 95% within +-10% at 128 and 224 px."""
    shares = {k: after[k]["within_10pct"] for k in ("128", "224") if k in after}
    met = len(shares) == 2 and min(shares.values()) >= 0.95
    text = ", ".join(f"{k} px {v:.1%}" for k, v in shares.items())
    return (f"Goal (issue 20, acceptance 3): at least 95% within ±10% at 128 and 224 px: "
            f"**{'met' if met else 'missed'}** ({text}).")


def corrections(c: dict) -> str:
    return ", ".join(f"{k} px ×{v:.3f}" for k, v in c.items())


def factors(f: dict) -> str:
    return ", ".join(f"{k}x{k} ×{v:.3f}" for k, v in f.items())


def markdown(r: dict) -> str:
    lines = ["## Latency table: check and re-calibration on this machine", ""]
    cmd, win = r.get("commands"), r.get("window")
    if cmd:
        h, rc = cmd["header"], cmd["recalibrate"]
        lines += [
            f"Table `{r['table']}`: measured on {h['table_device']} with "
            f"{h['table_backend_version']}; now {h['device']}, {h['backend_version']}; clock "
            f"`{h['clock']}` (thread CPU time), {h['timing']['net_runs']} timed runs per subnet "
            f"over {h['timing']['rounds']} rounds. Every subnet is exported as `edgessl "
            "export` does and timed as `edgessl bench` does.", "",
            f"**The two commands, one after the other** (`OMP_NUM_THREADS=1 python "
            f"benchmarks/recalibrate.py --mode commands --write` on {cmd['date']}; "
            f"{cmd['machine']}; re-fit {cmd['minutes']['recalibrate']} min, check "
            f"{cmd['minutes']['check']} min):", "",
            *[f"    {c}" for c in cmd["commands"]], "",
            f"Re-fitted from {rc['subnets']} subnets dealt over the table's resolutions; "
            f"corrections c(r): {corrections(rc['corrections'])}"
            + (f"; kernel factors {factors(rc['kernel_factors'])}" if rc.get("kernel_factors")
               else "")
            + (f"; size exponent g = {rc['size_exponent']['g']:.3f} (reference "
               f"{rc['size_exponent']['ref_ms']:.2f} ms)" if rc.get("size_exponent") else "")
            + ". Its own "
            f"{rc['held_out_per_resolution']} held-out subnets per resolution, measured in the "
            "same run, before → after:", "", HEAD, *rows(rc["before"], rc["after"]), "",
            f"The check, run right after on {cmd['check_per_resolution']} other fresh subnets "
            "per resolution, scored by the shipped table (before) and the re-fitted one "
            "(after), same measurements:", "", HEAD, *rows(cmd["before"], cmd["after"]), "",
            goal_line(cmd["after"]), ""]
        speed = cmd.get("host_speed")
        if speed:
            ratios, adj = speed["ratios"], cmd["after_at_fit_speed"]
            lines += [
                "The host's speed during the check against during the re-fit (`--check` "
                f"re-timed {ratios['all']['n']} of the re-fit's own subnets beside the fresh "
                "ones): " + ", ".join(f"{r} px ×{v['ratio']:.3f}" for r, v in ratios.items()
                                      if r != "all")
                + "; with that taken out, within ±10%: " + ", ".join(
                    f"{r} px {v['within_10pct']:.1%}" for r, v in adj.items() if r != "all")
                + ".", ""]
        noise = cmd.get("timing_noise")
        if noise:
            fit, chk = (noise[k]["median_p90_over_p10"] for k in ("recalibrate", "check"))
            lines += [f"How steady the host was (median p90/p10 of a subnet's timed runs; "
                      f"`--check` warns above 1.3): re-fit {fit:.2f}, check {chk:.2f}.", ""]
    if win:
        lines += [
            f"**One measurement window** (`OMP_NUM_THREADS=1 python benchmarks/recalibrate.py "
            f"--mode window --seed {win.get('seed', 1)} --write` on {win['date']}; "
            f"{win['machine']}; {win['minutes']} min): {win['subnets']} random and "
            f"{win['subnets']} designed re-calibration subnets and {win['check_per_resolution']} "
            "fresh check subnets per resolution, timed in one interleaved chunk (so a host whose "
            "speed drifts hits fit and check alike), then each re-fit scored on the check "
            f"subnets. Shipped method: corrections {corrections(win['corrections'])}"
            + (f", kernel factors {factors(win['kernel_factors'])}"
               if win.get("kernel_factors") else "") + ":", "", HEAD,
            *rows(win["before"], win["after"]), "", goal_line(win["after"]), ""]
        if win.get("variants"):
            lines += ["The re-fit's parts, on the same measurements (within ±10% / MAPE):",
                      "", "| re-calibration subnets, terms | 128 px | 224 px | kernel factors |",
                      "|---|---|---|---|"]
            for name, v in win["variants"].items():
                cells = [f"{v['after'][k]['within_10pct']:.1%} / {v['after'][k]['mape']:.2%}"
                         for k in ("128", "224")]
                lines.append(f"| {name} | {' | '.join(cells)} | "
                             f"{factors(v['kernel_factors']) or '-'} |")
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
