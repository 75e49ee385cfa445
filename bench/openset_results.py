"""The open-set SynthCity results (results/openset.json) and the README table built from them: the source-only model
with the post-hoc unknown scores against OSBP with confidence pseudo-labels, per seed, final weights.

  python bench/openset_results.py commands [--seeds 0 1 2] [--out runs/openset_v2]   # trainings still to do
  python bench/openset_results.py evaluations [--seeds 0 1 2] [--out runs/openset_v2]   # scorings still to do
                                                  # (with each training's label-free score)
  python bench/openset_results.py collect [--runs runs/openset_v2] [--out results/openset.json]
  python bench/openset_results.py table [results/openset.json] [--markdown results/openset.md]

Every threshold is fixed without target labels (``--unknown-threshold auto``: the value that flags 5% of the
held-out labelled source pixels); ``bench/openset_runs.sh`` runs what ``commands`` and ``evaluations`` print.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml

from synthcity_results import _cpu_name, _run_minutes, pending_training

OUT = "runs/openset_v2"
#: the trainings: run name -> config
RUNS = {"source_only": "configs/openset/synthcity_source_only_lite0.yaml",
        "osbp_pl": "configs/openset/synthcity_osbp_pl_lite0.yaml",
        "osbp_pl_tau": "configs/openset/synthcity_osbp_pl_tau_lite0.yaml",
        "open_self_training": "configs/openset/synthcity_self_training_lite0.yaml"}
RUN_LABELS = {"source_only": "source-only", "osbp_pl": "OSBP + confidence pseudo-labels",
              "osbp_pl_tau": "OSBP + pseudo-labels, τ 0.968", "open_self_training": "open-set self-training"}
#: each training's label-free score (``tools/evaluate.py --label-free``; reads no target label)
LABEL_FREE = "label_free.json"
#: (key, label, run, metrics file, tools/evaluate.py arguments; None: the trainer's own final evaluation)
ROWS = [
    ("source_only_msp", "source-only + MSP (max prob < T)", "source_only", "final_metrics_msp.json",
     "--unknown-score msp --unknown-threshold auto"),
    ("source_only_entropy", "source-only + normalized entropy (> T)", "source_only", "final_metrics_entropy.json",
     "--unknown-score entropy --unknown-threshold auto"),
    ("osbp_pl", "OSBP + confidence pseudo-labels (argmax over K+1)", "osbp_pl", "final_metrics.json", None),
    ("osbp_pl_head", "the same model, p(unknown) > T", "osbp_pl", "final_metrics_head.json",
     "--unknown-score head --unknown-threshold auto"),
    # the pseudo-label threshold rule's variant (docs/openset.md): known pseudo-labels only where confidence >= 0.968
    ("osbp_pl_tau", "OSBP + pseudo-labels, τ 0.968 (argmax over K+1)", "osbp_pl_tau", "final_metrics.json", None),
    ("osbp_pl_tau_head", "the τ 0.968 model, p(unknown) > T", "osbp_pl_tau", "final_metrics_head.json",
     "--unknown-score head --unknown-threshold auto"),
    # mean-teacher self-training with the (K+1)-way head (docs/openset.md, session 20)
    ("open_self_training", "open-set self-training: EMA teacher, ClassMix, MIC (argmax over K+1)",
     "open_self_training", "final_metrics.json", None),
    ("open_self_training_head", "the open-set self-training student, p(unknown) > T", "open_self_training",
     "final_metrics_head.json", "--unknown-score head --unknown-threshold auto"),
    ("open_self_training_teacher", "its EMA teacher (argmax over K+1; the student is the reported model)",
     "open_self_training", "final_metrics_teacher.json", None),
]
#: the row every other row is paired with, seed for seed
BASELINE = "source_only_msp"
METRICS = (("common_miou", "Common mIoU"), ("private_iou", "Private IoU"), ("h_score", "H-score"),
           ("auroc", "AUROC"), ("ap", "AP"), ("fpr95", "FPR95"))


def train_command(run: str, seed: int, out: str) -> str:
    """The training of ``run`` for ``seed``, one thread, into ``out/{run}_s{seed}``."""
    return f"OMP_NUM_THREADS=1 python tools/train.py {RUNS[run]} seed={seed} --work-dir {out}/{run}_s{seed}"


def eval_command(key: str, seed: int, out: str) -> Optional[str]:
    """The scoring of row ``key`` for ``seed`` (None for a row the trainer's final evaluation gives)."""
    _, _, run, metrics, args = next(r for r in ROWS if r[0] == key)
    if args is None:
        return None
    d = f"{out}/{run}_s{seed}"
    return (f"OMP_NUM_THREADS=1 python tools/evaluate.py {RUNS[run]} {d}/checkpoints/last.pth {args} --threads 1 "
            f"--out-json {d}/{metrics}")


def label_free_command(run: str, seed: int, out: str) -> str:
    """The label-free score of the final weights of ``run`` for ``seed``: the target-train predictions' class
    histogram (with an unknown bin) against the source labels', its entropy and the share predicted unknown."""
    d = f"{out}/{run}_s{seed}"
    return (f"OMP_NUM_THREADS=1 python tools/evaluate.py {d}/checkpoints/last.pth --label-free --threads 1 "
            f"--out-json {d}/{LABEL_FREE}")


def pending_trainings(seeds: Sequence[int], out: str) -> List[str]:
    """Arguments after ``python`` (with a log file each) of the unfinished trainings; interrupted ones resume
    (``synthcity_results.pending_training``)."""
    cmds = [pending_training(train_command(run, seed, out), f"{out}/{run}_s{seed}") for seed in seeds for run in RUNS]
    return [c for c in cmds if c]


def pending_evaluations(seeds: Sequence[int], out: str) -> List[str]:
    """Arguments after ``python`` of the scorings (and label-free scores) whose training has finished and whose
    result doesn't exist."""
    cmds = []
    for seed in seeds:
        for key, _, run, metrics, args in ROWS:
            d = Path(out, f"{run}_s{seed}")
            if args and (d / "final_metrics.json").is_file() and not (d / metrics).is_file():
                cmds.append(eval_command(key, seed, out).split(" python ", 1)[1])
        for run in RUNS:
            d = Path(out, f"{run}_s{seed}")
            if (d / "final_metrics.json").is_file() and not (d / LABEL_FREE).is_file():
                cmds.append(label_free_command(run, seed, out).split(" python ", 1)[1])
    return cmds


def collect(runs: Path, seeds: Sequence[int]) -> Dict[str, Any]:
    """Every finished row x seed under ``runs`` as one JSON document (metrics in %, threshold, time, commands)."""
    rows = []
    for key, label, run, metrics_file, _ in ROWS:
        entries = []
        for seed in seeds:
            d = runs / f"{run}_s{seed}"
            if not (d / metrics_file).is_file():
                continue
            m = json.loads((d / metrics_file).read_text())
            if int(yaml.safe_load((d / "config.yaml").read_text())["seed"]) != seed:
                raise SystemExit(f"{d}/config.yaml: seed is not {seed}")
            entry = {"seed": seed, **{k: None if m.get(k) is None else 100 * m[k] for k, _ in METRICS},
                     "threshold": m.get("threshold"), "score": m.get("score"), "work_dir": str(d),
                     "train_command": train_command(run, seed, str(runs)), "minutes": _run_minutes(d)}
            command = eval_command(key, seed, str(runs))
            if command:
                entry["command"] = command
            if (d / "environment.json").is_file():
                entry["cpu"] = json.loads((d / "environment.json").read_text())[0]["cpu"]
            entries.append(entry)
        if entries:
            rows.append({"key": key, "label": label, "config": RUNS[run], "runs": entries})
    label_free = []
    for run in RUNS:
        entries = []
        for seed in seeds:
            f = runs / f"{run}_s{seed}" / LABEL_FREE
            if f.is_file():
                lf = json.loads(f.read_text())
                entries.append({"seed": seed, **{k: lf.get(k) for k in ("total_variation", "mean_entropy",
                                                                         "unknown_fraction", "num_images")},
                                "command": label_free_command(run, seed, str(runs))})
        if entries:
            label_free.append({"run": run, "label": RUN_LABELS[run], "runs": entries})
    first = next((Path(e["work_dir"]) for r in rows for e in r["runs"]), None)
    cfg = yaml.safe_load((first / "config.yaml").read_text()) if first else {}
    return {"benchmark": "SynthCity game -> real, open set: 19 known classes, animal and tuk-tuk private to the "
                         "target, scored as one unknown class on target val (500 frames) at label resolution",
            "protocol": {"doc": "docs/openset.md", "data": {k: cfg.get("data", {}).get(k) for k in (
                "source_size", "target_size", "val_size", "batch_size")},
                "schedule": {k: cfg.get("schedule", {}).get(k) for k in ("max_iters", "amp")},
                "weights": "final (no checkpoint selection)", "threads_per_run": 1,
                "thresholds": "auto: 5% of held-out labelled source pixels flagged (no target label)"},
            "machine": {"cpu": sorted({e["cpu"] for r in rows for e in r["runs"] if "cpu" in e}) or _cpu_name()},
            "rows": rows, "label_free": label_free}


def _mean_std(values: Sequence[float], signed: bool = False, digits: int = 2) -> str:
    """``mean ± sample std`` (the std only with two values or more) with ``digits`` decimals; ``signed`` writes the
    mean's sign."""
    mean = format(statistics.fmean(values), f"{'+' if signed else ''}.{digits}f")
    return mean + (f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else "")


def table(doc: Dict[str, Any]) -> str:
    """Mean ± std over seeds of each metric (%), the H-score per seed, and the H-score paired to the baseline row
    (``BASELINE``) of the same seed."""
    if not doc["rows"]:
        raise SystemExit("openset_results.py table: no finished run in the file")
    base = {e["seed"]: e["h_score"] for r in doc["rows"] if r["key"] == BASELINE for e in r["runs"]}
    head = ["model (decision rule)", "seeds"] + [name for _, name in METRICS] + ["H per seed",
                                                                                 "paired Δ H vs MSP"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in doc["rows"]:
        runs = sorted(r["runs"], key=lambda e: e["seed"])
        cells = [r["label"], " / ".join(str(e["seed"]) for e in runs)]
        for k, _ in METRICS:
            vals = [e[k] for e in runs if e[k] is not None]
            cells.append(_mean_std(vals) if vals else "-")
        cells.append(" / ".join(f"{e['h_score']:.2f}" for e in runs))
        diffs = [e["h_score"] - base[e["seed"]] for e in runs if e["seed"] in base]
        cells.append("-" if r["key"] == BASELINE or not diffs else
                     _mean_std(diffs, signed=True) + f" ({' / '.join(f'{x:+.2f}' for x in diffs)})")
        lines.append("| " + " | ".join(cells) + " |")
    thresholds = "; ".join(f"{r['label']}: " + " / ".join(
        "-" if e.get("threshold") is None else f"{e['threshold']:.3g}" for e in r["runs"])
        for r in doc["rows"] if any(e.get("threshold") is not None for e in r["runs"]))
    text = "\n".join(lines) + (f"\n\nThresholds T per seed (fixed on held-out source pixels): {thresholds}.\n"
                               if thresholds else "\n")
    return text + (f"\n{label_free_table(doc['label_free'])}" if doc.get("label_free") else "")


def label_free_table(entries: Sequence[Dict[str, Any]]) -> str:
    """Per training: the label-free scores of its final weights on the unlabelled target-train images (mean ± std
    over seeds, and per seed): D (total variation to the source label histogram), entropy, share predicted unknown."""
    head = ["training (final weights)", "seeds", "D", "D per seed", "mean entropy", "predicted unknown, %"]
    lines = ["Label-free (no target label; `tools/evaluate.py RUN/checkpoints/last.pth --label-free`):", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in entries:
        runs = sorted(r["runs"], key=lambda e: e["seed"])
        unknown = [100 * e["unknown_fraction"] for e in runs if e.get("unknown_fraction") is not None]
        d = [e["total_variation"] for e in runs]
        lines.append("| " + " | ".join([
            r["label"], " / ".join(str(e["seed"]) for e in runs),
            _mean_std(d, digits=3),
            " / ".join(f"{x:.3f}" for x in d), " / ".join(f"{e['mean_entropy']:.3f}" for e in runs),
            " / ".join(f"{x:.2f}" for x in unknown) if unknown else "-"]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, help_ in (("commands", "print the unfinished trainings"), ("evaluations", "print the scorings to do")):
        c = sub.add_parser(name, help=help_)
        c.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
        c.add_argument("--out", default=OUT)
    g = sub.add_parser("collect", help="read the finished runs into the results file")
    g.add_argument("--runs", default=OUT)
    g.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    g.add_argument("--out", default="results/openset.json")
    t = sub.add_parser("table", help="print the README table from the results file")
    t.add_argument("results", nargs="?", default="results/openset.json")
    t.add_argument("--markdown", help="also write the table here")
    a = p.parse_args(argv)
    if a.cmd == "commands":
        print("\n".join(pending_trainings(a.seeds, a.out)))
    elif a.cmd == "evaluations":
        print("\n".join(pending_evaluations(a.seeds, a.out)))
    elif a.cmd == "collect":
        doc = collect(Path(a.runs), a.seeds)
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {a.out}: {sum(len(r['runs']) for r in doc['rows'])} results in {len(doc['rows'])} rows")
    else:
        text = table(json.loads(Path(a.results).read_text()))
        print(text)
        if a.markdown:
            Path(a.markdown).write_text(text)


if __name__ == "__main__":
    main()
