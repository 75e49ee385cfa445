"""bench/openset_results.py: the open-set table's pending runs, results file and table, on hand-made run folders."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml


def fake_openset_run(runs: Path, run: str, seed: int, files: dict) -> Path:
    """A finished run folder: its resolved config's seed, a metrics.jsonl ending at 120 s and the metrics files."""
    d = runs / f"{run}_s{seed}"
    (d / "checkpoints").mkdir(parents=True)
    (d / "checkpoints" / "last.pth").touch()
    (d / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "data": {"batch_size": 4}}))
    (d / "metrics.jsonl").write_text(json.dumps({"kind": "train", "iter": 600, "time": 120.0}) + "\n")
    write_metrics(d, files)
    return d


def write_metrics(d: Path, files: dict) -> None:
    """Open-set metrics files (fractions, as the trainer and tools/evaluate.py write them) from (Common, Private, T)."""
    for name, (common, private, thr) in files.items():
        h = 2 * common * private / (common + private) if common + private else 0.0
        (d / name).write_text(json.dumps({"common_miou": common, "private_iou": private, "h_score": h,
                                          "auroc": 0.58, "ap": 0.007, "fpr95": 0.8, "threshold": thr}))


def test_openset_results_pending_collect_and_table(tmp_path):
    import openset_results as osr

    runs = tmp_path / "runs"
    # nothing run: every training of each seed, no scoring (a scoring needs its finished training)
    assert [c.split()[1] for c in osr.pending_trainings([0], str(runs))] == [
        "configs/openset/synthcity_source_only_lite0.yaml", "configs/openset/synthcity_osbp_pl_lite0.yaml",
        "configs/openset/synthcity_osbp_pl_tau_lite0.yaml", "configs/openset/synthcity_self_training_lite0.yaml"]
    assert osr.pending_evaluations([0], str(runs)) == []
    # seed 0 source-only trained but not scored; osbp_pl interrupted (a checkpoint, no final metrics): resumed
    fake_openset_run(runs, "source_only", 0, {"final_metrics.json": (0.10, 0.0, None)})
    (runs / "osbp_pl_s0" / "checkpoints").mkdir(parents=True)
    (runs / "osbp_pl_s0" / "checkpoints" / "last.pth").touch()
    pending, tau, _ = osr.pending_trainings([0], str(runs))
    assert "osbp_pl_tau_lite0.yaml seed=0" in tau and " --resume" not in tau
    assert "osbp_pl_lite0.yaml seed=0" in pending and pending.endswith(
        f"--no-progress --resume >> {runs}/osbp_pl_s0.log 2>&1")
    assert osr.pending_evaluations([0], str(runs)) == [
        f"tools/evaluate.py configs/openset/synthcity_source_only_lite0.yaml {runs}/source_only_s0/checkpoints/"
        f"last.pth --unknown-score {s} --unknown-threshold auto --threads 1 --out-json "
        f"{runs}/source_only_s0/final_metrics_{s}.json" for s in ("msp", "entropy")] + [
        f"tools/evaluate.py {runs}/source_only_s0/checkpoints/last.pth --label-free --threads 1 "
        f"--out-json {runs}/source_only_s0/label_free.json"]
    # two seeds finished and scored: hand-made Common / Private (H = 2CP / (C + P))
    shutil.rmtree(runs / "osbp_pl_s0")
    fake_openset_run(runs, "source_only", 1, {"final_metrics.json": (0.10, 0.0, None)})
    for seed, (c_msp, p_msp, c_os, p_os) in enumerate([(0.12, 0.01, 0.06, 0.02), (0.14, 0.02, 0.08, 0.04)]):
        write_metrics(runs / f"source_only_s{seed}", {"final_metrics_msp.json": (c_msp, p_msp, 0.47),
                                                      "final_metrics_entropy.json": (c_msp, p_msp, 0.49)})
        fake_openset_run(runs, "osbp_pl", seed, {"final_metrics.json": (c_os, p_os, None),
                                                 "final_metrics_head.json": (c_os, p_os / 2, 0.018)})
        for run, (tv, ent, unk) in (("source_only", (0.2 + seed / 10, 0.4, None)), ("osbp_pl", (0.9, 0.05, 0.01))):
            (runs / f"{run}_s{seed}" / "label_free.json").write_text(json.dumps(
                {"total_variation": tv, "mean_entropy": ent, "num_images": 2000,
                 **({} if unk is None else {"unknown_fraction": unk})}))
    assert [c.split()[1] for c in osr.pending_trainings([0, 1], str(runs))] == [
        osr.RUNS["osbp_pl_tau"], osr.RUNS["open_self_training"]] * 2
    assert osr.pending_evaluations([0, 1], str(runs)) == []
    doc = osr.collect(runs, [0, 1, 2])
    assert [r["key"] for r in doc["rows"]] == ["source_only_msp", "source_only_entropy", "osbp_pl", "osbp_pl_head"]
    msp = doc["rows"][0]["runs"]
    assert [e["seed"] for e in msp] == [0, 1] and msp[0]["common_miou"] == pytest.approx(12.0)
    assert msp[1]["h_score"] == pytest.approx(100 * 2 * 0.14 * 0.02 / 0.16) and msp[0]["minutes"] == 2.0
    assert msp[0]["threshold"] == 0.47 and "--unknown-score msp" in msp[0]["command"]
    assert "command" not in doc["rows"][2]["runs"][0]  # the trainer's own final evaluation
    text = osr.table(doc)
    h = {"msp": [100 * 2 * 0.12 * 0.01 / 0.13, 100 * 2 * 0.14 * 0.02 / 0.16],
         "osbp": [100 * 2 * 0.06 * 0.02 / 0.08, 100 * 2 * 0.08 * 0.04 / 0.12]}
    d = [o - m for o, m in zip(h["osbp"], h["msp"])]
    osbp_line = next(line for line in text.splitlines() if line.startswith("| OSBP"))
    assert f"| {(h['osbp'][0] + h['osbp'][1]) / 2:.2f} ± " in osbp_line
    assert f"| {h['osbp'][0]:.2f} / {h['osbp'][1]:.2f} |" in osbp_line
    assert f"| {(d[0] + d[1]) / 2:+.2f} ± " in osbp_line and f"({d[0]:+.2f} / {d[1]:+.2f}) |" in osbp_line
    assert "| 7.00 ± 1.41 |" in osbp_line  # Common mIoU: 6 and 8
    assert next(line for line in text.splitlines() if line.startswith("| source-only + MSP")).endswith("| - |")
    assert "the same model, p(unknown) > T: 0.018 / 0.018" in text
    # the label-free scores of each training, per seed (D: 0.2 and 0.3 for source-only, mean 0.25, std 0.071)
    assert doc["label_free"][1]["runs"][0]["unknown_fraction"] == 0.01
    assert "| source-only | 0 / 1 | 0.250 ± 0.071 | 0.200 / 0.300 | 0.400 / 0.400 | - |" in text
    assert "| OSBP + confidence pseudo-labels | 0 / 1 | 0.900 ± 0.000 | 0.900 / 0.900 | 0.050 / 0.050 | 1.00 / 1.00 |" \
        in text
    # the command line writes the same file and table
    osr.main(["collect", "--runs", str(runs), "--out", str(tmp_path / "os.json")])
    osr.main(["table", str(tmp_path / "os.json"), "--markdown", str(tmp_path / "os.md")])
    assert (tmp_path / "os.md").read_text() == text
    # a run folder whose config has another seed is refused, naming it
    (runs / "osbp_pl_s1" / "config.yaml").write_text(yaml.safe_dump({"seed": 5}))
    with pytest.raises(SystemExit, match="osbp_pl_s1/config.yaml: seed is not 1"):
        osr.collect(runs, [1])
