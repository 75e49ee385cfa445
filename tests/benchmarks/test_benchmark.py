"""The ADVENT reference loop (tools/benchmark.py --reference) and the benchmark tool itself."""
from __future__ import annotations

import argparse
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

    assert variant_spec("bf16_cl") == ("bf16", True, "trainer", "conv", "conv", "conv", False)
    assert variant_spec("fp16_cl_gemm+compile") == ("fp16", True, "trainer", "gemm", "conv", "conv", True)
    assert variant_spec("bf16_cl_gemm_pw") == ("bf16", True, "trainer", "gemm", "gemm", "conv", False)
    assert variant_spec("fp32_dwflip") == ("none", False, "trainer", "conv", "conv", "flipped", False)
    assert variant_spec("config") == (None, None, "trainer", None, None, None, False)
    for bad in ("bf17", "reference+compile", "fp32+jit"):
        with pytest.raises(Exception, match="unknown variant"):
            variant_spec(bad)


def test_gemm_table_gives_each_peak_as_a_multiple_of_fp32(tmp_path, monkeypatch, capsys):
    from seg_uda.benchmarks import gemm

    fake = {torch.float32: 300.0, torch.bfloat16: 1800.0}  # the table's arithmetic, not a timing
    monkeypatch.setattr(gemm, "gemm_peak", lambda device, dtype: fake[dtype])
    peaks = gemm.cmd_gemm(argparse.Namespace(device="cpu", out=str(tmp_path)))
    assert peaks == {"float32": 300.0, "bfloat16": 1800.0}
    table = (tmp_path / "gemm.md").read_text()
    assert "| float32 | 300 | 1.00x |" in table and "| bfloat16 | 1800 | 6.00x |" in table
    assert "x float32" in capsys.readouterr().out


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
    cv2_floor = next(r for r in floors if r["name"].startswith("decode only, cv2"))
    assert cv2_floor["x_cv2_floor"] == 1.0  # issue 18's floor: cv2 on the evaluation's threads
    assert all(r["x_cv2_floor"] == pytest.approx(r["s"] / cv2_floor["s"]) for r in rows.values())
    env = json.loads(out.read_text())["env"]  # the machine the figures come from
    printed = capsys.readouterr().out
    assert "x decode floor" in printed and f"machine: {env['cpu']} (" in printed and env["threads"] >= 1


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


def test_depthwise_calls_counts_each_depthwise_convolution_per_shape():
    from seg_uda.benchmarks.depthwise import depthwise_calls

    model = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 5, padding=4, dilation=2, groups=4),
                                torch.nn.Conv2d(4, 4, 3, padding=1, groups=4),
                                torch.nn.Conv2d(4, 8, 1),  # dense: not counted
                                torch.nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8))
    calls = depthwise_calls(model, [torch.zeros(2, 4, 6, 10), torch.zeros(2, 4, 6, 10), torch.zeros(1, 4, 8, 8)])
    assert calls == {((2, 4, 6, 10), (4, 1, 5, 5), (1, 1), (4, 4), (2, 2)): 2,
                     ((2, 4, 6, 10), (4, 1, 3, 3), (1, 1), (1, 1), (1, 1)): 2,
                     ((2, 8, 6, 10), (8, 1, 3, 3), (2, 2), (1, 1), (1, 1)): 2,
                     ((1, 4, 8, 8), (4, 1, 5, 5), (1, 1), (4, 4), (2, 2)): 1,
                     ((1, 4, 8, 8), (4, 1, 3, 3), (1, 1), (1, 1), (1, 1)): 1,
                     ((1, 8, 8, 8), (8, 1, 3, 3), (2, 2), (1, 1), (1, 1)): 1}


def test_depthwise_benchmark_rows_cover_the_lite0_step(tmp_path, capsys):
    from seg_uda.benchmarks.cli import parse_args
    from seg_uda.benchmarks.depthwise import cmd_depthwise

    config = REPO / "configs" / "synthcity" / "minent_lite0.yaml"
    a = parse_args(["depthwise", str(config), "model.encoder_weights=null", "data.source_size=[64,48]",
                    "data.target_size=[64,32]", "data.batch_size=1", "--iters", "1",
                    "--threads", "1", "--out", str(tmp_path)])
    rows = cmd_depthwise(a)
    layers, totals = [r for r in rows if "kernel" in r], [r for r in rows if "kernel" not in r]
    assert {r["kernel"] for r in layers} == {3, 5} and [t["layer"] for t in totals] == ["step total, 5x5",
                                                                                        "step total, 3x3"]
    assert any(" d2 " in r["layer"] for r in layers)  # output stride 16: the last stage is dilated
    assert sum(t["calls"] for t in totals) == sum(r["calls"] for r in layers) == 2 * 16  # 16 per forward, 2 batches
    for t in totals:
        sel = [r for r in layers if f"{r['kernel']}x{r['kernel']}" in t["layer"]]
        assert t["grad_weight"] == pytest.approx(sum(r["grad_weight"] * r["calls"] for r in sel))
    assert all(r["forward"] > 0 and r["grad_input"] > 0 and r["grad_weight_gflops"] > 0 for r in layers)
    # depthwise_impl=flipped takes the stride-1 calls only (timm's stride-2 ones pad on the fly: oneDNN's backward)
    assert all(("backward_flipped" in r) == (" s1 " in r["layer"]) and r["backward_conv"] > 0 for r in layers)
    assert any(" s2 " in r["layer"] for r in layers)
    assert "bwd weight GFLOP/s" in (tmp_path / "depthwise_synthcity_minent_lite0.md").read_text()
    assert "depthwise convolutions of synthcity_minent_lite0" in capsys.readouterr().out


def test_machine_line_names_cpu_flags_threads_and_gpu():
    from seg_uda.benchmarks.common import machine_line

    env = {"cpu": "AMD EPYC", "cpu_isa": ["avx2", "avx512_bf16"], "cpu_count": 2, "threads": 1}
    assert machine_line(env) == "machine: AMD EPYC (avx2, avx512_bf16), 2 CPUs, 1 threads"
    env = {"cpu": "unknown", "cpu_isa": [], "cpu_count": None, "threads": 4, "gpu": "NVIDIA H200"}
    assert machine_line(env) == "machine: unknown (no avx2/avx512/amx flags), None CPUs, 4 threads, GPU NVIDIA H200"


def test_saved_tables_name_the_machine(tmp_path, capsys):
    """Every saved table carries the CPU model and flags it was measured on (JSON env and a Markdown line)."""
    import os

    from seg_uda.benchmarks.common import environment, save_table
    from seg_uda.runtime.environment import cpu_info

    cpu, isa = cpu_info()
    line = f"machine: {cpu} ({', '.join(isa) or 'no avx2/avx512/amx flags'}), {os.cpu_count()} CPUs, 2 threads"
    save_table(str(tmp_path), "t", {"env": environment(2, torch.device("cpu")), "rows": []}, "### t\n")
    assert (tmp_path / "t.md").read_text() == f"### t\n\n{line}\n"
    env = json.loads((tmp_path / "t.json").read_text())["env"]
    assert (env["cpu"], env["cpu_isa"], env["threads"]) == (cpu, list(isa), 2)
    assert line in capsys.readouterr().out
