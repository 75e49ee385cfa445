"""The bench/ scripts that build the SynthCity results file, its tables and the label-free rules, tested on
hand-made run folders (no training)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml


def test_synthcity_results_run_time_of_a_resumed_run(tmp_path):
    """A resumed run's clock restarts at 0: its time is each part up to the checkpoint resumed from, plus the last
    part (the iterations redone after the checkpoint are not counted twice)."""
    import synthcity_results as sr

    recs = [("train", 100, 60.0), ("train", 200, 130.0), ("train", 240, 160.0),  # killed after iteration 240
            ("resume", 200, 0.0), ("train", 300, 70.0), ("eval", 300, 95.0)]
    (tmp_path / "metrics.jsonl").write_text("".join(
        json.dumps({"kind": k, "iter": i, "time": t}) + "\n" for k, i, t in recs))
    assert sr._run_minutes(tmp_path) == round((130.0 + 95.0) / 60, 2)
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"kind": "train", "iter": 1, "time": 90.0}) + "\n")
    assert sr._run_minutes(tmp_path) == 1.5  # not resumed: the last record's time


def fake_run(runs: Path, key: str, seed: int, miou: float, iou=None, seconds: float = 90.0) -> Path:
    """A finished run folder as bench/synthcity_results.py reads it: final metrics, and (except for an ensemble,
    which has no config or log of its own) the resolved config's seed and a metrics.jsonl ending at ``seconds``."""
    d = runs / f"{key}_s{seed}"
    d.mkdir(parents=True)
    (d / "final_metrics.json").write_text(json.dumps({"miou": miou, "iou": iou or {"road": miou}}))
    if not key.startswith("ensemble"):
        (d / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "data": {"batch_size": 4}}))
        (d / "metrics.jsonl").write_text(json.dumps({"kind": "train", "iter": 1, "time": seconds}) + "\n")
    return d


def test_synthcity_results_collect_and_table(tmp_path, capsys):
    import synthcity_results as sr

    runs = tmp_path / "runs"

    def run(key: str, seed: int, miou: float, road: float) -> None:
        fake_run(runs, key, seed, miou, {"road": road, "sky": miou})

    for seed, (s, o, a, e) in enumerate([(0.10, 0.35, 0.14, 0.15), (0.20, 0.40, 0.26, 0.22)]):
        run("source_only", seed, s, 0.5)
        run("oracle", seed, o, 0.9)
        run("advent", seed, a, 0.6 + 0.2 * seed)
        run("ensemble", seed, e, 0.5)
    doc = sr.collect(runs, [0, 1, 2])
    assert [r["key"] for r in doc["rows"]] == ["source_only", "advent", "ensemble", "oracle"]
    advent = doc["rows"][1]
    assert advent["runs"][1]["command"] == ("OMP_NUM_THREADS=1 python tools/train.py"
                                            " configs/synthcity/advent_lite0.yaml"
                                            f" seed=1 --work-dir {runs}/advent_s1")
    assert advent["runs"][0]["minutes"] == 1.5 and "ensemble_s0" in doc["rows"][2]["runs"][0]["command"]
    assert doc["protocol"]["data"]["batch_size"] == 4
    (tmp_path / "r.json").write_text(json.dumps(doc))
    sr.main(["table", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "t.md")])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| AdvEnt"))
    # mean road 70, mean sky 20, 20 ± 8.5; gap closed (20 - 15) / (37.5 - 15) = 22%; paired (4, 6) -> +5.0 ± 1.4
    assert row == "| AdvEnt | 2 | 70.0 | 20.0 | **20.0 ± 8.5** | 22% | +5.0 ± 1.4 (2) | +4.0 / +6.0 |"
    assert "source-only 10.00 / 20.00" in out
    assert (tmp_path / "t.md").read_text() == out.rstrip("\n") + "\n"
    assert sr.pending_commands(["advent"], [1, 2], str(runs)) == [
        f"tools/train.py configs/synthcity/advent_lite0.yaml seed=2 --work-dir {runs}/advent_s2 --no-progress "
        f">> {runs}/advent_s2.log 2>&1"]
    # an interrupted run (a checkpoint, no final metrics) resumes from it, its log appended
    (runs / "advent_s2" / "checkpoints").mkdir(parents=True)
    (runs / "advent_s2" / "checkpoints" / "last.pth").touch()
    assert sr.pending_commands(["advent"], [1, 2], str(runs)) == [
        f"tools/train.py configs/synthcity/advent_lite0.yaml seed=2 --work-dir {runs}/advent_s2 --no-progress "
        f"--resume >> {runs}/advent_s2.log 2>&1"]
    with pytest.raises(SystemExit, match="unknown row"):
        sr.pending_commands(["ensemble"], [0], str(runs))
    # ensembles: listed once both members' final checkpoints exist, and no longer once scored
    for member in ("minent_cp", "advent_cp"):
        (runs / f"{member}_s0" / "checkpoints").mkdir(parents=True)
        (runs / f"{member}_s0" / "checkpoints" / "last.pth").write_bytes(b"")
    assert sr.pending_ensembles([0, 1], str(runs)) == [
        f"tools/evaluate.py configs/synthcity/minent_lite0.yaml {runs}/minent_cp_s0/checkpoints/last.pth "
        f"{runs}/advent_cp_s0/checkpoints/last.pth --weights 0.5 0.5 --fuse logit --threads 1 "
        f"--out-json {runs}/ensemble_cp_s0/final_metrics.json"]  # ensemble_s0 / _s1 are scored already
    run("ensemble_cp", 0, 0.3, 0.5)
    assert sr.pending_ensembles([0], str(runs)) == []

    # a table of other seeds (a replication): only their runs count; the gap falls back to the oracle's own seeds
    run("source_only", 3, 0.12, 0.5)
    run("advent", 3, 0.21, 0.6)
    text = sr.table(sr.collect(runs, [0, 1, 3]), [3])
    row = next(line for line in text.splitlines() if line.startswith("| AdvEnt"))
    # gap (21 - 12) / (37.5 - 12) = 35%; paired +9.0 on the one seed
    assert row == "| AdvEnt | 1 | 60.0 | 21.0 | **21.0** | 35% | +9.0 (1) | +9.0 |"
    assert "mIoU per seed (3): source-only 12.00; AdvEnt 21.00." in text
    assert "oracle's mean over its own seeds" in text and "| oracle" not in text


def test_rcs_rule_needs_two_of_three_seeds_and_the_mean():
    from rcs_rule import drop_rcs

    assert drop_rcs([0.3, 0.3, 0.3], [0.2, 0.2, 0.4])       # 2 of 3 lower, mean 0.267 < 0.3
    assert not drop_rcs([0.3, 0.3, 0.3], [0.2, 0.4, 0.4])   # 1 of 3
    assert not drop_rcs([0.3, 0.3, 0.3], [0.29, 0.29, 0.5])  # 2 of 3, but the mean is higher
    assert not drop_rcs([0.3, 0.3, 0.3], [0.3, 0.3, 0.3])   # ties keep DAFormer's setting
    with pytest.raises(ValueError, match="one D per seed"):
        drop_rcs([0.3], [0.2, 0.2])


def test_synthcity_learning_curve_table(tmp_path):
    import synthcity_results as sr

    runs = tmp_path / "runs"
    # seed 0 at every budget; seed 1 at 600 iterations only (its 1,200-iteration student is missing)
    for key, seed, miou in (("source_only", 0, 0.14), ("self_training", 0, 0.17), ("oracle", 0, 0.28),
                            ("source_only", 1, 0.12), ("self_training", 1, 0.16), ("oracle", 1, 0.30),
                            ("curve1200_source_only", 0, 0.15), ("curve1200_self_training", 0, 0.19),
                            ("curve1200_oracle", 0, 0.31), ("curve1200_source_only", 1, 0.16),
                            ("curve300_source_only", 0, 0.1)):
        d = fake_run(runs, key, seed, miou, seconds=1200.0 + 60 * seed)
        if key.endswith("self_training"):
            (d / "final_metrics_teacher.json").write_text(json.dumps({"miou": miou + 0.001, "iou": {"road": miou}}))
    doc = sr.collect(runs, [0, 1])
    lines = sr.curve_table(doc, [0, 1]).splitlines()
    # 600: source-only 13 ± 1.41, student 16.5 ± 0.71, oracle 29 ± 1.41, paired +3.0 / +4.0, gap 3.5 / (29 - 13);
    # 1,200: seed 0 only (seed 1 has no student); 300 has no self-training run
    assert lines[2] == ("| 600 | 0 / 1 | 13.00 ± 1.41 | 16.50 ± 0.71 | 16.60 ± 0.71 | 29.00 ± 1.41 "
                        "| +3.50 ± 0.71 (+3.00 / +4.00) | 22% | 20–21 |")
    assert lines[3] == "| 1,200 | 0 | 15.00 | 19.00 | 19.10 | 31.00 | +4.00 | 25% | 20 |"
    assert len(lines) == 6 and lines[4] == ""
    assert lines[5] == "mIoU per seed at 600 (seeds 0 / 1): source-only 14.00 / 12.00; student 17.00 / 16.00; " \
                       "oracle 28.00 / 30.00."
    assert sr.curve_table(doc, [0]).splitlines()[2] == "| 600 | 0 | 14.00 | 17.00 | 17.10 | 28.00 | +3.00 | 21% | 20 |"
    # the main table leaves the curve rows out; a curve row's gap is to the source-only and oracle of its own
    # budget (the main table's definition: each row's mean over its own seeds), its paired Δ over shared seeds
    assert "budget" not in sr.table(doc)
    curve_row = next(r for r in sr.summarize(doc) if r["key"] == "curve1200_self_training")
    assert curve_row["gap_closed"] == pytest.approx((19 - 15.5) / (31 - 15.5))
    assert curve_row["paired"] == [pytest.approx(4.0)]


def test_curve_label_free_table_reads_cached_scores_and_skips_unfinished_budgets(tmp_path, capsys, monkeypatch):
    import curve_label_free as clf

    runs = tmp_path / "runs"
    scores = {("source_only", 600, 0): (0.3, 0.4), ("self_training", 600, 0): (0.2, 0.35),
              ("source_only", 600, 1): (0.5, 0.45), ("self_training", 600, 1): (0.1, 0.25),
              ("source_only", 1200, 0): (0.35, 0.4)}  # 1,200 iterations: no student yet, so no row
    for (row, budget, seed), (d, h) in scores.items():
        run = clf.run_dir(runs, row, budget, seed)
        (run / "checkpoints").mkdir(parents=True)
        (run / "checkpoints" / "last.pth").write_bytes(b"")
        (run / "label_free.json").write_text(json.dumps({"total_variation": d, "mean_entropy": h}))
    assert clf.run_dir(runs, "self_training", 1200, 2) == runs / "curve1200_self_training_s2"
    monkeypatch.setattr(sys, "argv", ["curve_label_free.py", "--runs", str(runs), "--seeds", "0", "1"])
    assert clf.main() == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[2] == ("| 600 | 0 / 1 | 0.300 / 0.500 (mean 0.400) | 0.400 / 0.450 (mean 0.425) | "
                        "0.200 / 0.100 (mean 0.150) | 0.350 / 0.250 (mean 0.300) |")


def test_synthcity_results_two_stage_rows(tmp_path):
    """The two-stage rows start from the source-only run of their own seed, and are compared with their control."""
    import synthcity_results as sr

    cmds = sr.pending_commands(["minent_cp_ft"], [2], str(tmp_path))
    assert cmds == [f"tools/train.py configs/synthcity/minent_cp_lite0.yaml seed=2 "
                    f"model.init_from={tmp_path}/source_only_s2/checkpoints/last.pth "
                    f"--work-dir {tmp_path}/minent_cp_ft_s2 --no-progress >> {tmp_path}/minent_cp_ft_s2.log 2>&1"]
    runs = tmp_path / "runs"
    for key, mious in {"source_only": (0.10, 0.20), "source_only_ft": (0.12, 0.21), "minent_cp_ft": (0.15, 0.20),
                       "curve1200_oracle": (0.32, 0.32), "oracle": (0.30, 0.30)}.items():
        for seed, miou in enumerate(mious):
            fake_run(runs, key, seed, miou)
    doc = sr.collect(runs, [0, 1])
    rows = {r["key"]: r for r in sr.summarize(doc)}
    assert rows["minent_cp_ft"]["paired"] == pytest.approx([3.0, -1.0])  # to the control, not to source-only
    assert rows["source_only_ft"]["paired"] == pytest.approx([2.0, 1.0])
    assert rows["minent_cp_ft"]["gap_closed"] == pytest.approx((17.5 - 16.5) / (32.0 - 16.5))  # 1,200-iteration oracle
    text = sr.table(doc)
    assert "The paired Δ of the rows minent_cp_ft is to `source_only_ft`" in text
    assert "The gap closed of the rows source_only_ft, minent_cp_ft is to `curve1200_oracle`" in text
    ft = next(line for line in text.splitlines() if line.startswith("| two-stage: MinEnt"))
    assert "| 6% |" in ft  # (17.5 - 16.5) / (32.0 - 16.5), with the 1,200-iteration oracle left out of the table
    assert "curve1200" not in text.split("\n\n")[0]


def test_diagnostics_summary_on_hand_made_records(tmp_path):
    import diagnostics_summary as ds

    recs = [{"kind": "diag", "iter": i, "disc_acc_main_src": a, "disc_acc_main_tgt": b, "gradratio_adv_backbone": g,
             "entropy_src": 0.2, "entropy_tgt": e, "hist_tv_tgt_pred_vs_src_label": tv}
            for i, a, b, g, e, tv in [(25, 1.0, 0.0, 0.9, 0.5, 0.9), (50, 1.0, 0.5, 0.1, 0.4, 0.5),
                                      (75, 0.5, 0.5, 0.3, 0.3, 0.4), (100, 0.9, 0.7, 0.2, 0.1, 0.3)]]
    s = ds.summarize_run(recs)
    assert s["disc_acc_main"] == pytest.approx((0.5 + 0.5 + 0.9 + 0.7) / 4)  # iterations 75 and 100: the 2nd half
    assert s["gradratio_adv"] == pytest.approx(0.25) and s["disc_acc_aux"] is None and s["gradratio_ent"] is None
    assert (s["entropy_tgt"], s["tv"], s["iter"]) == (0.1, 0.3, 100)
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert "| 100 | 0.650 | - | 0.250 |" in ds.table([tmp_path])


def test_synthcity_results_batchnorm_rows_file_apart_and_merge(tmp_path, capsys):
    """The BatchNorm experiment's rows (bn_*) go to their own file, are paired to their statistics-only control,
    and a collect in a checkout holding only some runs can keep the results file's other runs (--merge)."""
    import synthcity_results as sr

    runs = tmp_path / "runs"
    for seed in (0, 1):
        fake_run(runs, "source_only", seed, 0.13)
        fake_run(runs, "bn_stats", seed, 0.20 + 0.01 * seed)
        fake_run(runs, "bn_minent", seed, 0.23 + 0.02 * seed)
    assert [r["key"] for r in sr.collect(runs, [0, 1])["rows"]] == ["source_only"]
    bn = sr.collect(runs, [0, 1], ["bn_stats", "bn_minent"])
    assert [r["key"] for r in bn["rows"]] == ["bn_stats", "bn_minent"]
    assert bn["rows"][1]["runs"][0]["command"].endswith("model.bn_policy=frozen_affine "
                                                        f"--work-dir {runs}/bn_minent_s0")
    minent = next(r for r in sr.summarize(bn) if r["key"] == "bn_minent")
    assert minent["paired"] == pytest.approx([3.0, 4.0])  # to bn_stats of the same seed
    assert "model.bn_policy=frozen_affine --weights" in sr.ensemble_command(str(runs), 0, "bn_ensemble")
    # AdaBN re-scoring of the finished runs (an unfinished one is not listed), read back as the *_adabn rows
    (runs / "bn_advent_s0" / "checkpoints").mkdir(parents=True)
    (runs / "bn_advent_s0" / "checkpoints" / "last.pth").touch()
    assert sr.pending_adabn([0], str(runs)) == [
        f"tools/evaluate.py {runs}/{k}_s0/checkpoints/last.pth --adabn 500 --threads 1 "
        f"--out-json {runs}/{k}_s0/final_metrics_adabn.json" for k in ("bn_stats", "bn_minent")]
    for key, miou in (("bn_stats", 0.12), ("bn_minent", 0.15)):
        (runs / f"{key}_s0" / "final_metrics_adabn.json").write_text(json.dumps({"miou": miou, "iou": {"road": 0.5}}))
    adabn = sr.summarize(sr.collect(runs, [0], ["bn_stats_adabn", "bn_minent_adabn"]))
    assert adabn[1]["paired"] == pytest.approx([3.0]) and "--adabn 500" in sr.adabn_command(str(runs), 0, "bn_ensemble")
    sr.main(["collect", "--runs", str(runs), "--seeds", "0", "1", "--out", str(tmp_path / "bn.json"), "--rows", "bn"])
    assert [r["key"] for r in json.loads((tmp_path / "bn.json").read_text())["rows"]] == [
        "bn_stats", "bn_minent", "bn_stats_adabn", "bn_minent_adabn"]  # 'bn': every bn_* row there is
    with pytest.raises(SystemExit, match=r"no finished run of seeds \[3, 4, 5\]"):
        sr.table(json.loads((tmp_path / "bn.json").read_text()), [3, 4, 5])
    # --if-any: the same absence says so and writes nothing, so a script can ask for seeds that may not have run
    md = tmp_path / "bn_seeds345.md"
    sr.main(["table", str(tmp_path / "bn.json"), "--seeds", "3", "4", "5", "--if-any", "--markdown", str(md)])
    assert "no finished run of seeds [3, 4, 5]; no table written" in capsys.readouterr().out and not md.exists()
    sr.main(["table", str(tmp_path / "bn.json"), "--seeds", "0", "--if-any", "--markdown", str(md)])
    assert md.read_text().startswith("| run | seeds |")
    # --merge: the old file's runs of seed 2 and of a row absent here survive; seeds present here are replaced
    old = {"protocol": {"p": 1}, "machine": {"cpu": "AMD EPYC"}, "rows": [
        {"key": "oracle", "label": "oracle", "config": "c", "runs": [{"seed": 0, "miou": 28.0}]},
        {"key": "source_only", "label": "source-only", "config": "c",
         "runs": [{"seed": 0, "miou": 99.0}, {"seed": 2, "miou": 12.5}]}]}
    (tmp_path / "r.json").write_text(json.dumps(old))
    sr.main(["collect", "--runs", str(runs), "--seeds", "0", "1", "--out", str(tmp_path / "r.json"), "--merge"])
    doc = json.loads((tmp_path / "r.json").read_text())
    assert [r["key"] for r in doc["rows"]] == ["source_only", "oracle"]
    assert [(e["seed"], e["miou"]) for e in doc["rows"][0]["runs"]] == [(0, 13.0), (1, 13.0), (2, 12.5)]
    assert "AMD EPYC" in doc["machine"]["cpu"]
