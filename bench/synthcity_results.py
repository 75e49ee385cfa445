"""The SynthCity results file (results/synthcity.json) and the README table built from it.

  python bench/synthcity_results.py commands [--rows ROW ...] [--seeds 0 1 2]   # the runs still to do, one a line
  python bench/synthcity_results.py ensembles [--seeds 0 1 2]   # the 0.5/0.5 ensembles whose two runs exist
  python bench/synthcity_results.py adabn [--seeds 0 1 2]   # the BatchNorm experiment's AdaBN scorings still to do
  python bench/synthcity_results.py collect --runs runs/v2 --out results/synthcity.json   # seeds 0-5
  python bench/synthcity_results.py table results/synthcity.json [--markdown results/synthcity.md] [--seeds 3 4 5]
  python bench/synthcity_results.py curve results/synthcity.json [--markdown results/synthcity_curve.md] [--seeds 0]

``ROWS`` (bench/synthcity_rows.py) is the one list of rows: ``bench/accuracy_runs.sh`` runs what ``commands``
prints, ``collect`` reads each run's ``final_metrics.json`` (the final weights), ``config.yaml``,
``environment.json`` (its CPU) and ``metrics.jsonl`` (run time), and ``table`` prints mean ± std over seeds,
per-class IoU, the share of the source-only→oracle gap closed and the paired difference to the source-only run
of the same seed (or to the row's own baseline, ``BASELINE``).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml

from synthcity_rows import (ADABN, ADABN_IMAGES, BASELINE, BN_ROWS, CURVE_BUDGETS, DEFAULT_ROWS,
                            ENSEMBLE_OVERRIDES, ENSEMBLES, METRICS_FROM, ORACLE, OUT, ROWS)

ABBREV = {"sidewalk": "sidew.", "building": "build.", "traffic light": "light", "traffic sign": "sign",
          "vegetation": "veg.", "motorcycle": "mbike", "bicycle": "bike"}



def train_command(config: str, seed: int, work_dir: str, overrides: str = "") -> str:
    """The run's command line; ``{seed}`` and ``{runs}`` (the folder of ``work_dir``) in the overrides are filled."""
    overrides = overrides.format(seed=seed, runs=Path(work_dir).parent.as_posix())
    extra = f" {overrides}" if overrides else ""
    return (f"OMP_NUM_THREADS=1 python tools/train.py configs/synthcity/{config} seed={seed}{extra} "
            f"--work-dir {work_dir}")


def ensemble_command(out: str, seed: int, key: str = "ensemble") -> str:
    """ADVENT's AdvEnt+MinEnt: the MinEnt and AdvEnt models of one seed (``ENSEMBLES[key]``), logits averaged
    0.5 / 0.5."""
    a, b = ENSEMBLES[key]
    overrides = f"{ENSEMBLE_OVERRIDES[key]} " if key in ENSEMBLE_OVERRIDES else ""
    return (f"OMP_NUM_THREADS=1 python tools/evaluate.py configs/synthcity/minent_lite0.yaml "
            f"{out}/{a}_s{seed}/checkpoints/last.pth {out}/{b}_s{seed}/checkpoints/last.pth {overrides}"
            f"--weights 0.5 0.5 --fuse logit --threads 1 --out-json {out}/{key}_s{seed}/final_metrics.json")


def adabn_command(out: str, seed: int, key: str) -> str:
    """Run ``key`` of ``seed`` (or its ensemble) scored after AdaBN on ``ADABN_IMAGES`` unlabelled target images."""
    metrics = f"{out}/{key}_s{seed}/final_metrics_adabn.json"
    if key in ENSEMBLES:
        return ensemble_command(out, seed, key).replace("--weights", f"--adabn {ADABN_IMAGES} --weights").replace(
            "final_metrics.json", "final_metrics_adabn.json")
    return (f"OMP_NUM_THREADS=1 python tools/evaluate.py {out}/{key}_s{seed}/checkpoints/last.pth "
            f"--adabn {ADABN_IMAGES} --threads 1 --out-json {metrics}")


def pending_adabn(seeds: Sequence[int], out: str) -> List[str]:
    """Arguments after ``python`` of the AdaBN scorings whose runs have finished and result doesn't exist."""
    cmds = []
    for seed in seeds:
        for key in ADABN.values():
            members = ENSEMBLES.get(key, (key,))
            done = Path(out, f"{key}_s{seed}", "final_metrics_adabn.json").is_file()
            if not done and all(Path(out, f"{m}_s{seed}", "final_metrics.json").is_file() for m in members):
                cmds.append(adabn_command(out, seed, key).split(" python ", 1)[1])
    return cmds


def pending_ensembles(seeds: Sequence[int], out: str) -> List[str]:
    """Arguments after ``python`` of the ensembles of ``seeds`` whose two final checkpoints exist and result doesn't."""
    cmds = []
    for seed in seeds:
        for key, members in ENSEMBLES.items():
            done = Path(out, f"{key}_s{seed}", "final_metrics.json").is_file()
            if not done and all(Path(out, f"{m}_s{seed}", "checkpoints", "last.pth").is_file() for m in members):
                cmds.append(ensemble_command(out, seed, key).split(" python ", 1)[1])
    return cmds


def _run_minutes(run_dir: Path) -> Optional[float]:
    """Wall time of the run (training and the final evaluation) from its metrics.jsonl, in minutes. A resumed run
    (a ``resume`` record, whose clock restarts at 0) counts each interrupted part up to the checkpoint it resumed
    from, plus the last part: the time of the work kept, not of the iterations redone after the checkpoint."""
    log = run_dir / "metrics.jsonl"
    if not log.is_file():
        return None
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    total, part = 0.0, []
    for r in records:
        if r.get("kind") == "resume":
            total += max((q["time"] for q in part if q.get("iter", 0) <= r["iter"]), default=0.0)
            part = []
        else:
            part.append(r)
    total += max((q["time"] for q in part), default=0.0)
    return round(total / 60, 2) if records else None


def collect(runs: Path, seeds: Sequence[int], keys: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Every finished run of the rows ``keys`` (default: all but the BatchNorm experiment's) under ``runs`` as one
    JSON document (rows x seeds, per-class IoU, time, command)."""
    keys = [k for k, *_ in ROWS if k not in BN_ROWS] if keys is None else keys
    rows = []
    for key, label, config, overrides in (r for r in ROWS if r[0] in keys):
        entries = []
        for seed in seeds:
            run_key, metrics_file = METRICS_FROM.get(key, (key, "final_metrics.json"))
            d = runs / f"{run_key}_s{seed}"
            metrics = d / metrics_file
            if not metrics.is_file():
                continue
            m = json.loads(metrics.read_text())
            entry = {"seed": seed, "miou": 100 * m["miou"],
                     "iou": {k: (100 * v if v is not None else None) for k, v in m["iou"].items()},
                     "work_dir": str(d)}
            if key in ADABN:
                entry["command"] = adabn_command(str(runs), seed, ADABN[key])
            elif config is None:
                entry["command"] = ensemble_command(str(runs), seed, key)
            else:
                assert int(yaml.safe_load((d / "config.yaml").read_text())["seed"]) == seed, d
                entry["command"] = train_command(config, seed, str(d), overrides)
                entry["minutes"] = _run_minutes(d)
                if (d / "environment.json").is_file():  # runs since session 15 record their CPU
                    entry["cpu"] = json.loads((d / "environment.json").read_text())[0]["cpu"]
            entries.append(entry)
        if entries:
            rows.append({"key": key, "label": label, "config": config and f"configs/synthcity/{config}",
                         "runs": entries})
    first = next((Path(e["work_dir"]) for r in rows if r["config"] for e in r["runs"]), None)
    cfg = yaml.safe_load((first / "config.yaml").read_text()) if first else {}  # the protocol as the runs resolved it
    return {"benchmark": "SynthCity game -> real, 19 classes, target val (500 frames) at label resolution",
            "protocol": {"doc": "docs/synthcity_protocol.md", "data": {k: cfg.get("data", {}).get(k) for k in (
                "source_size", "target_size", "val_size", "batch_size", "hflip")},
                "model": cfg.get("model"), "optim": cfg.get("optim"), "schedule": cfg.get("schedule"),
                "weights": "final (no checkpoint selection)", "threads_per_run": 1},
            "machine": {"cpu": sorted({e["cpu"] for r in rows for e in r["runs"] if "cpu" in e}) or _cpu_name(),
                        "python": platform.python_version()},
            "rows": rows}


def merge(old: Dict[str, Any], new: Dict[str, Any]) -> Dict[str, Any]:
    """``new`` plus every run of ``old`` (row key, seed) that ``new`` lacks, rows in ``ROWS`` order."""
    rows = {r["key"]: r for r in new["rows"]}
    for r in old["rows"]:
        have = {e["seed"] for e in rows[r["key"]]["runs"]} if r["key"] in rows else set()
        kept = [e for e in r["runs"] if e["seed"] not in have]
        if kept:
            row = rows.setdefault(r["key"], {**r, "runs": []})
            row["runs"] = sorted(row["runs"] + kept, key=lambda e: e["seed"])
    order = {k: i for i, (k, *_) in enumerate(ROWS)}
    cpus = [c for d in (old, new) for c in ([d["machine"]["cpu"]] if isinstance(d["machine"]["cpu"], str)
                                            else d["machine"]["cpu"])]
    return {**new, "protocol": new["protocol"] if new["rows"] else old["protocol"],
            "machine": {**new["machine"], "cpu": sorted(set(cpus))},
            "rows": sorted(rows.values(), key=lambda r: order.get(r["key"], len(order)))}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def select_seeds(doc: Dict[str, Any], seeds: Optional[Sequence[int]]) -> Dict[str, Any]:
    """The results document restricted to the runs of ``seeds`` (rows left without a run are dropped)."""
    if seeds is None:
        return doc
    rows = [{**r, "runs": [e for e in r["runs"] if e["seed"] in set(seeds)]} for r in doc["rows"]]
    return {**doc, "rows": [r for r in rows if r["runs"]]}


def summarize(doc: Dict[str, Any], seeds: Optional[Sequence[int]] = None) -> List[Dict[str, Any]]:
    """Per row: mean ± std mIoU, mean per-class IoU, paired difference to source-only, share of the gap closed.
    With ``seeds``, only their runs count, except the oracle of the gap, which falls back to all of its seeds
    when it has none of these (its seed spread is 0.4 mIoU)."""
    out = []
    all_orc = {e["seed"]: e["miou"] for r in doc["rows"] if r["key"] == "oracle" for e in r["runs"]}
    doc = select_seeds(doc, seeds)
    by_key = {r["key"]: {e["seed"]: e["miou"] for e in r["runs"]} for r in doc["rows"]}
    for r in doc["rows"]:
        orc_key = ORACLE.get(r["key"], "oracle")
        orc = by_key.get(orc_key) or (all_orc if orc_key == "oracle" else {})
        mious = [e["miou"] for e in r["runs"]]
        names = list(r["runs"][0]["iou"])
        iou = {n: statistics.fmean([e["iou"][n] if e["iou"][n] is not None else float("nan") for e in r["runs"]])
               for n in names}
        base_key = BASELINE.get(r["key"], "source_only")
        base = by_key.get(base_key, {})
        seeds = sorted(set(by_key[r["key"]]) & set(base))
        diffs = [by_key[r["key"]][s] - base[s] for s in seeds] if r["key"] != base_key else []
        gap = None  # (mean - source-only mean) / (oracle mean - source-only mean), same-budget source-only
        if base and orc and r["key"] not in (base_key, orc_key, "oracle"):
            m_src, m_orc = statistics.fmean(base.values()), statistics.fmean(orc.values())
            gap = (statistics.fmean(mious) - m_src) / (m_orc - m_src) if m_orc != m_src else None
        out.append({"key": r["key"], "label": r["label"], "n": len(mious), "mean": statistics.fmean(mious),
                    "std": statistics.stdev(mious) if len(mious) > 1 else None, "iou": iou,
                    "per_seed": {e["seed"]: e["miou"] for e in r["runs"]},
                    "paired": diffs, "gap_closed": gap,
                    "minutes": [e.get("minutes") for e in r["runs"]]})
    return out


def curve_table(doc: Dict[str, Any], seeds: Sequence[int] = (0,)) -> str:
    """The learning curve of self-training over ``seeds``: per budget, source-only, self-training (student and EMA
    teacher) and the oracle trained as long (mean ± std over the seeds that have both source-only and the student),
    the student's paired difference to source-only and the share of the gap closed (of the means)."""
    runs = {r["key"]: {e["seed"]: e for e in r["runs"]} for r in doc["rows"]}

    def cell(values: List[float], signed: bool = False) -> str:
        f = "{:+.2f}" if signed else "{:.2f}"
        if not values:
            return "-"
        if len(values) == 1:
            return f.format(values[0])
        return f.format(statistics.fmean(values)) + f" ± {statistics.stdev(values):.2f}"

    lines = ["| iterations | seeds | source-only | self-training (student) | its EMA teacher | oracle "
             "| student − source-only (paired) | gap closed | self-training run (min) |",
             "|---|---|---|---|---|---|---|---|---|"]
    per_seed = []
    for n in sorted((600, *CURVE_BUDGETS)):
        pre = "" if n == 600 else f"curve{n}_"
        got = {k: runs.get(pre + k, {}) for k in ("source_only", "self_training", "self_training_teacher", "oracle")}
        have = [s for s in seeds if s in got["source_only"] and s in got["self_training"]]
        if not have:
            continue
        miou = {k: [v[s]["miou"] for s in have if s in v] for k, v in got.items()}
        diffs = [b - a for a, b in zip(miou["source_only"], miou["self_training"])]
        paired = cell(diffs, signed=True) + (" (" + " / ".join(f"{d:+.2f}" for d in diffs) + ")" if len(diffs) > 1
                                             else "")
        m_src, m_orc = statistics.fmean(miou["source_only"]), miou["oracle"] and statistics.fmean(miou["oracle"])
        gap = f"{100 * statistics.fmean(diffs) / (m_orc - m_src):.0f}%" if miou["oracle"] and m_orc != m_src else "-"
        minutes = [got["self_training"][s].get("minutes") for s in have]
        minutes = [m for m in minutes if m]
        mins = "-" if not minutes else (f"{min(minutes):.0f}" if round(min(minutes)) == round(max(minutes))
                                        else f"{min(minutes):.0f}–{max(minutes):.0f}")
        lines.append(f"| {n:,} | {' / '.join(map(str, have))} | {cell(miou['source_only'])} | "
                     f"{cell(miou['self_training'])} | {cell(miou['self_training_teacher'])} | {cell(miou['oracle'])} "
                     f"| {paired} | {gap} | {mins} |")
        if len(have) > 1:
            per_seed.append(f"{n:,} (seeds {' / '.join(map(str, have))}): " + "; ".join(
                f"{label} {' / '.join(f'{v:.2f}' for v in miou[k])}" for k, label in (
                    ("source_only", "source-only"), ("self_training", "student"), ("oracle", "oracle"))))
    text = "\n".join(lines) + "\n"
    return text + ("\nmIoU per seed at " + "; at ".join(per_seed) + ".\n" if per_seed else "")


def table_rows(doc: Dict[str, Any], seeds: Optional[Sequence[int]] = None) -> List[Dict[str, Any]]:
    """The summaries :func:`table` shows: all but the learning-curve rows (``curve*``, whose oracles still count)."""
    return [r for r in summarize(doc, seeds) if not r["key"].startswith("curve")]


def table(doc: Dict[str, Any], seeds: Optional[Sequence[int]] = None) -> str:
    """The README table: per-class IoU, mean ± std mIoU, gap closed, paired Δ to source-only (mean ± std, n).
    The learning-curve rows have their own table (:func:`curve_table`)."""
    rows = table_rows(doc, seeds)
    if not rows:
        raise SystemExit(f"synthcity_results.py table: no finished run of seeds {list(seeds or [])} in the file")
    names = list(rows[0]["iou"])
    head = ["run", "seeds"] + [ABBREV.get(n, n) for n in names] + ["mIoU", "gap closed", "paired Δ vs source-only",
                                                                   "Δ per seed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        std = f" ± {r['std']:.1f}" if r["std"] is not None else ""
        d = r["paired"]
        paired = "-" if not d else f"{statistics.fmean(d):+.1f}" + (f" ± {statistics.stdev(d):.1f}" if len(d) > 1
                                                                    else "") + f" ({len(d)})"
        per_seed = " / ".join(f"{x:+.1f}" for x in d) if d else "-"
        gap = f"{100 * r['gap_closed']:.0f}%" if r["gap_closed"] is not None else "-"
        cells = [r["label"], str(r["n"])] + [f"{r['iou'][n]:.1f}" for n in names] + [
            f"**{r['mean']:.1f}{std}**", gap, paired, per_seed]
        lines.append("| " + " | ".join(cells) + " |")
    per_seed_text = "; ".join(f"{r['label']} " + " / ".join(f"{v:.2f}" for _, v in sorted(r["per_seed"].items()))
                              for r in rows)
    shown = sorted({seed for r in rows for seed in r["per_seed"]})
    note = ""
    if not any(r["key"] == "oracle" for r in rows) and any(r["gap_closed"] is not None for r in rows):
        note = " The gap closed is to the oracle's mean over its own seeds (0 / 1 / 2)."
    labels = {r["key"]: r["label"] for r in doc["rows"]}
    for mapping, what, tail in ((BASELINE, "paired Δ", " of the same seed"), (ORACLE, "gap closed", "")):
        for other in dict.fromkeys(mapping[r["key"]] for r in rows if r["key"] in mapping):  # e.g. two-stage rows
            keys = [r["key"] for r in rows if mapping.get(r["key"]) == other]
            note += f" The {what} of the rows {', '.join(keys)} is to `{other}` ({labels.get(other, other)}){tail}."
    return "\n".join(lines) + f"\n\nmIoU per seed ({' / '.join(map(str, shown))}): {per_seed_text}.{note}\n"


def pending_training(command: str, work_dir: str) -> Optional[str]:
    """The arguments after ``python`` of the training ``command`` into ``work_dir`` if it hasn't finished (no final
    metrics), with its log appended to ``{work_dir}.log``; ``--resume`` where a checkpoint exists, since a resumed run
    matches an uninterrupted one (on the same CPU model). None when it has finished. Every bench runs script uses it."""
    d = Path(work_dir)
    if (d / "final_metrics.json").is_file():
        return None
    resume = " --resume" if (d / "checkpoints" / "last.pth").is_file() else ""
    return command.split(" python ", 1)[1] + f" --no-progress{resume} >> {work_dir}.log 2>&1"


def pending_commands(rows: Sequence[str], seeds: Sequence[int], out: str) -> List[str]:
    """Arguments after ``python`` (with a log file each) of the runs of ``rows`` x ``seeds`` with no final metrics;
    interrupted runs resume (``pending_training``)."""
    configs = {k: (c, o) for k, _, c, o in ROWS}
    unknown = [r for r in rows if r not in configs or configs[r][0] is None]
    if unknown:
        raise SystemExit(f"unknown row(s) {unknown}; valid: {[k for k, _, c, _ in ROWS if c]}")
    cmds = []
    for seed in seeds:
        for row in (r for r in rows if r not in METRICS_FROM):  # those come with another row's runs
            d = f"{out}/{row}_s{seed}"
            config, overrides = configs[row]
            cmd = pending_training(train_command(config, seed, d, overrides), d)
            if cmd:
                cmds.append(cmd)
    return cmds


def main(argv: Optional[Sequence[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("commands", help="print the training commands of the unfinished runs")
    c.add_argument("--rows", nargs="+", default=DEFAULT_ROWS)
    c.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    c.add_argument("--out", default=OUT)
    e = sub.add_parser("ensembles", help="print the evaluation commands of the ensembles still to score")
    e.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    e.add_argument("--out", default=OUT)
    b = sub.add_parser("adabn", help="print the AdaBN scorings of the BatchNorm experiment still to do")
    b.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    b.add_argument("--out", default=OUT)
    g = sub.add_parser("collect", help="write the results file from the run folders")
    g.add_argument("--runs", default=OUT)
    g.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5],
                   help="the seeds read (the table's 0-2 and the self-training replication's 3-5)")
    g.add_argument("--out", default="results/synthcity.json")
    g.add_argument("--rows", nargs="+", help="the rows read (default: all but the BatchNorm experiment's bn_*; "
                   "'bn': all of those)")
    g.add_argument("--merge", action="store_true",
                   help="keep the runs already in --out whose folders are not under --runs (a partial checkout)")
    t = sub.add_parser("table", help="print the README table from the results file")
    t.add_argument("results", nargs="?", default="results/synthcity.json")
    t.add_argument("--markdown", help="also write the table here")
    t.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="the seeds tabled (default 0 1 2)")
    t.add_argument("--if-any", action="store_true",
                   help="with no finished run of --seeds in the file, say so and write nothing (instead of failing)")
    u = sub.add_parser("curve", help="print the learning-curve table from the results file")
    u.add_argument("results", nargs="?", default="results/synthcity.json")
    u.add_argument("--markdown", help="also write the table here")
    u.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="the seeds averaged (default 0 1 2)")
    a = p.parse_args(argv)
    if a.cmd == "commands":
        print("\n".join(pending_commands(a.rows, a.seeds, a.out)))
    elif a.cmd == "ensembles":
        print("\n".join(pending_ensembles(a.seeds, a.out)))
    elif a.cmd == "adabn":
        print("\n".join(pending_adabn(a.seeds, a.out)))
    elif a.cmd == "collect":
        doc = collect(Path(a.runs), a.seeds, list(BN_ROWS) if a.rows == ["bn"] else a.rows)
        if a.merge and Path(a.out).is_file():
            doc = merge(json.loads(Path(a.out).read_text()), doc)
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {a.out}: {sum(len(r['runs']) for r in doc['rows'])} runs in {len(doc['rows'])} rows")
    else:
        doc = json.loads(Path(a.results).read_text())
        if a.cmd == "table" and a.if_any and not table_rows(doc, a.seeds):
            print(f"{a.results}: no finished run of seeds {a.seeds}; no table written")
            return
        text = curve_table(doc, a.seeds) if a.cmd == "curve" else table(doc, a.seeds)
        print(text)
        if a.markdown:
            Path(a.markdown).write_text(text)


if __name__ == "__main__":
    main()
