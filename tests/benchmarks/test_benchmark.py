"""The ADVENT reference loop (tools/benchmark.py --reference) and the benchmark tool itself."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import REPO, tiny_cfg_dict
from seg_uda.benchmarks.train import bench_trainer, synthetic_batches
from seg_uda.config import config_from_dict, resolved_dict
from seg_uda.benchmarks.reference import ReferenceTrainer, reference_advent_step
from seg_uda.engine.trainer import Trainer
from seg_uda.models import PointwiseGemmConv2d


def _cfg(method: str, aspp_impl: str = "conv", channels_last: bool = False, pointwise_impl: str = "conv",
         **optim) -> object:
    return config_from_dict({
        "name": f"bench_{method}", "seed": 0, "device": "cpu",
        "data": {"source": {"type": "gta5", "root": "unused"}, "target": {"type": "cityscapes", "root": "unused"},
                 "val": None, "source_size": [64, 48], "target_size": [64, 32], "num_classes": 5},
        "model": {"name": "deeplabv2", "encoder_name": "resnet18", "encoder_weights": None, "multi_level": True,
                  "bn_policy": "frozen", "aspp_impl": aspp_impl, "channels_last": channels_last,
                  "pointwise_impl": pointwise_impl},
        "method": {"name": method},
        "optim": {"lr": 1e-2, **optim},
        "schedule": {"max_iters": 10, "amp": "none"},
    })


def _trainer(cfg, tmp_path: Path, name: str, loop: str = "trainer") -> Trainer:
    return bench_trainer(cfg, loop, synthetic_batches(cfg, torch.device("cpu"), cfg.model.channels_last),
                         work_dir=tmp_path / name, progress=False)


@pytest.mark.slow  # 6 cases x 2 trainers x 2 iterations
@pytest.mark.parametrize("method,aspp_impl,channels_last", [
    ("source_only", "conv", False), ("minent", "conv", False), ("advent", "conv", False),
    ("advent_minent", "conv", False), ("advent", "gemm", False), ("advent", "gemm", True)])
def test_reference_loop_equals_trainer_step_in_fp32(method, aspp_impl, channels_last, tmp_path):
    """ADVENT's separate-backward FP32 loop and Trainer.run_step compute the same losses and the same update
    (also with our loop's classifiers as one GEMM, and with the model and discriminators channels-last and the
    1x1 convolutions as GEMMs, as the ResNet-101 configs run them; the reference keeps the per-branch convolutions,
    the 1x1 convolutions and NCHW)."""
    torch.set_num_threads(1)
    pointwise = "gemm" if channels_last else "conv"
    ours = _trainer(_cfg(method, aspp_impl, channels_last, pointwise, grad_clip=1.0), tmp_path, "ours")
    assert any(isinstance(m, PointwiseGemmConv2d) for m in ours.model.modules()) == channels_last
    if channels_last:
        assert all(p.is_contiguous(memory_format=torch.channels_last)
                   for p in ours.method.discriminator_parameters() if p.dim() == 4)
    ref = _trainer(_cfg(method, "conv", grad_clip=1.0), tmp_path, "ref")
    for it in range(2):
        a = ours.run_step()
        b = reference_advent_step(ref, *ref.next_batches())
        ours.iteration += 1
        ref.iteration += 1
        assert set(a) == set(b)
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-7), (it, k)
    for (n, p), (_, q) in zip(ours.model.named_parameters(), ref.model.named_parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6, msg=n)
    if ours.d_optimizer is not None:
        for p, q in zip(ours.method.discriminator_parameters(), ref.method.discriminator_parameters()):
            # channels-last convolutions round differently, and Adam divides by sqrt(v): on near-zero gradients
            # that rounding becomes up to ~2% of a 1e-4 step
            torch.testing.assert_close(p, q, rtol=1e-4, atol=5e-6 if channels_last else 1e-6)


def test_reference_trainer_uses_the_paper_codes_convolutions(tmp_path):
    t = _trainer(_cfg("advent", "gemm"), tmp_path, "ref", loop="reference")
    assert {m.impl for m in t.model.modules() if hasattr(m, "conv2d_list")} == {"conv"}


def test_reference_loop_rejects_autocast_and_other_methods(tmp_path):
    with pytest.raises(ValueError, match="FP32"):
        t = _trainer(config_from_dict({**resolved_dict(_cfg("advent")), "schedule": {"max_iters": 2, "amp": "bf16"}}),
                     tmp_path, "bf16")
        reference_advent_step(t, *t.next_batches())
    t = _trainer(_cfg("dann"), tmp_path, "dann")
    with pytest.raises(TypeError, match="DANN"):
        reference_advent_step(t, *t.next_batches())


@pytest.mark.slow
def test_benchmark_train_prints_table_and_saves_json(tmp_path):
    cfg_path = tmp_path / "bench.yaml"
    cfg_path.write_text(yaml.safe_dump(resolved_dict(_cfg("advent"))))
    out = tmp_path / "out"
    # "+compile" with aot_eager: the compiled step's plumbing without minutes of C++ code generation
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "benchmark.py"), "train", str(cfg_path),
                           "schedule.compile_backend=aot_eager", "--variants", "reference", "bf16", "fp32+compile",
                           "--iters", "1", "--threads", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "speed-up" in proc.stdout and "reference" in proc.stdout
    data = json.loads((out / "train_bench.json").read_text())
    rows = {r["variant"]: r for r in data["rows"]}
    assert set(rows) == {"reference", "bf16", "fp32+compile"}
    assert rows["fp32+compile"]["compile"] and not rows["bf16"]["compile"]
    assert rows["fp32+compile"]["max_loss_rel_diff"] < 1e-4  # compiled FP32 step = the FP32 reference's losses
    assert rows["reference"]["speedup"] == 1.0 and rows["reference"]["max_loss_rel_diff"] == 0.0
    assert data["flops_per_iter"] > 0 and rows["bf16"]["peak_frac"] > 0
    assert rows["bf16"]["max_loss_rel_diff"] < 0.05  # bf16 autocast vs FP32: same losses within AMP tolerance
    assert all(r["peak_rss_mib"] > 0 and r["s_per_iter"] > 0 for r in rows.values())
    assert (out / "train_bench.md").read_text().startswith("### train step")


def test_variant_names_and_compile_suffix():
    from seg_uda.benchmarks.train import variant_spec

    assert variant_spec("bf16_cl") == ("bf16", True, "trainer", "conv", "conv", False)
    assert variant_spec("fp16_cl_gemm+compile") == ("fp16", True, "trainer", "gemm", "conv", True)
    assert variant_spec("bf16_cl_gemm_pw") == ("bf16", True, "trainer", "gemm", "gemm", False)
    assert variant_spec("config") == (None, None, "trainer", None, None, False)
    for bad in ("bf17", "reference+compile", "fp32+jit"):
        with pytest.raises(Exception, match="unknown variant"):
            variant_spec(bad)


def test_eval_benchmark_reports_the_decode_floor(tmp_path, capsys):
    from seg_uda.benchmarks.folder_eval import main

    out = tmp_path / "eval.json"
    main(["--num-images", "3", "--height", "64", "--width", "128", "--repeats", "1", "--skip-instances",
          "--out", str(out)])
    rows = {r["name"]: r for r in json.loads(out.read_text())["rows"]}
    floors = [r for r in rows.values() if r.get("floor")]
    assert any(name.startswith("decode only, cv2") for name in rows) and floors
    assert min(r["x_decode_floor"] for r in floors) == 1.0  # the fastest decode-only row is the floor
    scored = [r for r in rows.values() if "miou" in r]
    assert len({r["miou"] for r in scored}) == 1  # every evaluator, cityscapesscripts included, agrees
    assert all(r["x_decode_floor"] > 0 for r in scored)
    assert "x decode floor" in capsys.readouterr().out


@pytest.mark.slow
def test_benchmark_methods_one_row_per_config(tmp_path):
    paths = []
    for method in ("source_only", "advent"):
        paths.append(tmp_path / f"{method}.yaml")
        paths[-1].write_text(yaml.safe_dump(resolved_dict(_cfg(method, "gemm"))))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "benchmark.py"), "methods", *map(str, paths),
                           "schedule.amp=bf16", "--iters", "1", "--threads", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads((out / "methods.json").read_text())["rows"]
    assert [(r["config"], r["method"]) for r in rows] == [("source_only", "source_only"), ("advent", "advent")]
    # the "config" variant keeps each config's settings (plus the shared overrides)
    assert all(r["amp"] == "bf16" and r["aspp_impl"] == "gemm" and r["img_per_s"] > 0 for r in rows)
    assert "d_main_src" in rows[1]["first_losses"] and "d_main_src" not in rows[0]["first_losses"]
    assert [r["images_per_iter"] for r in rows] == [1, 2]  # source-only reads no target batch


@pytest.mark.slow
def test_benchmark_infer_compares_aspp_impls(tmp_path):
    cfg_path = tmp_path / "bench.yaml"
    cfg_path.write_text(yaml.safe_dump(resolved_dict(_cfg("advent"))))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "benchmark.py"), "infer", str(cfg_path),
                           "--amp", "none", "bf16", "--channels-last", "true", "--aspp-impl", "conv", "gemm",
                           "--iters", "1", "--warmup", "1", "--threads", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads((out / "infer_bench.json").read_text())["rows"]
    assert [(r["amp"], r["aspp_impl"]) for r in rows] == [("none", "conv"), ("none", "gemm"), ("bf16", "conv"),
                                                          ("bf16", "gemm")]
    assert rows[0]["speedup"] == 1.0 and all(r["img_per_s"] > 0 for r in rows)


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
        f"> {runs}/advent_s2.log 2>&1"]
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


def _synthcity_cfg(root: Path, method: str = "advent", **schedule) -> object:
    d = tiny_cfg_dict(root, method, name="ref", device="cpu", data={"val": None}, optim={"lr": 1e-2},
                      schedule={"max_iters": 3, "amp": "none", "ckpt_interval": 3, **schedule})
    del d["data"]["val_size"], d["schedule"]["eval_interval"]  # no val split: both keep their defaults
    return config_from_dict(d)


@pytest.mark.slow
def test_train_cli_reference_mode_matches_default_loop_in_fp32(synthcity, tmp_path):
    """tools/train.py --reference trains with ADVENT's loop on real data; in FP32 it logs the same losses."""
    from seg_uda.cli import train as train_tool

    cfg_path = tmp_path / "ref.yaml"
    cfg_path.write_text(yaml.safe_dump(resolved_dict(_synthcity_cfg(synthcity))))
    assert train_tool.main([str(cfg_path), "--reference", "--work-dir", str(tmp_path / "ref"), "--no-progress"]) == 0
    assert train_tool.main([str(cfg_path), "--work-dir", str(tmp_path / "ours"), "--no-progress"]) == 0

    def losses(d: str) -> list:
        recs = [json.loads(x) for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k.startswith(("seg_", "adv_", "d_"))}
                for r in recs if r["kind"] == "train"]

    ref, ours = losses("ref"), losses("ours")
    assert len(ref) == len(ours) == 3 and set(ref[0]) == set(ours[0]) and "adv_main" in ref[0]
    for a, b in zip(ref, ours):
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-7), k
    saved = yaml.safe_load((tmp_path / "ref" / "config.yaml").read_text())
    assert saved["schedule"]["amp"] == "none" and saved["model"]["channels_last"] is False


def test_trainer_reference_mode_rejects_bf16_and_unsupported_methods(synthcity, tmp_path):
    with pytest.raises(ValueError, match="schedule.amp=none"):
        ReferenceTrainer(_synthcity_cfg(synthcity, amp="bf16"), work_dir=tmp_path / "a")
    with pytest.raises(TypeError, match="DANN"):
        ReferenceTrainer(_synthcity_cfg(synthcity, method="dann"), work_dir=tmp_path / "b")


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
                    f"--work-dir {tmp_path}/minent_cp_ft_s2 --no-progress > {tmp_path}/minent_cp_ft_s2.log 2>&1"]
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


def test_synthcity_results_batchnorm_rows_file_apart_and_merge(tmp_path):
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
