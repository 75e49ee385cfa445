"""ADVENT's schedule in the paper configs: poly horizon 250,000 with early stop, poly-decayed discriminator LR
(both training loops, exact across resume), GRL ramps on the run's progress, SYNTHIA's 16/13-class final metrics."""
import json

import pytest
import torch

from conftest import REPO, load_tool, tiny_cfg_dict
from seg_uda.config import ConfigError, config_from_dict, load_config
from seg_uda.data import SYNTHIA13_CLASSES
from seg_uda.engine.lr import build_poly_lr, poly_lr_factor
from seg_uda.benchmarks.reference import ReferenceTrainer
from seg_uda.engine.trainer import Trainer

GTA5_ADVENT = REPO / "configs/gta5_to_cityscapes/advent_deeplabv2_r101.yaml"
SYNTHIA_ADVENT = REPO / "configs/synthia_to_cityscapes/advent_deeplabv2_r101.yaml"


def optimizers(cfg):
    """SGD with ADVENT's two groups (backbone lr, heads 10 lr) and Adam at disc_lr, on dummy parameters."""
    p = [torch.nn.Parameter(torch.zeros(1)) for _ in range(3)]
    opt = torch.optim.SGD([{"params": [p[0]], "lr": cfg.optim.lr},
                           {"params": [p[1]], "lr": cfg.optim.lr * cfg.optim.head_lr_mult}], lr=cfg.optim.lr)
    return opt, torch.optim.Adam([p[2]], lr=cfg.optim.disc_lr)


@pytest.mark.parametrize("path, stop, want", [(GTA5_ADVENT, 120000, 0.5551), (SYNTHIA_ADVENT, 90000, 0.6692)])
def test_paper_lr_at_early_stop_for_segmenter_and_discriminator(path, stop, want):
    cfg = load_config(path)
    assert cfg.schedule.max_iters == stop and cfg.schedule.poly_horizon == 250000 and cfg.optim.disc_poly
    opt, d_opt = optimizers(cfg)
    sched = build_poly_lr(cfg, opt, d_opt)
    sched.set_iteration(stop)  # ADVENT: lr_poly(base, i, MAX_ITERS=250000, 0.9) for every optimiser
    bases = [cfg.optim.lr, cfg.optim.lr * 10, cfg.optim.disc_lr]
    ratios = [lr / b for lr, b in zip(sched.get_lr(), bases)]
    assert ratios == pytest.approx([(1 - stop / 250000) ** 0.9] * 3, rel=1e-12)
    assert ratios[0] == pytest.approx(want, abs=1e-4)
    if stop == 120000:  # averaged over the run: ~0.78x base (decaying to 0 at 120k would average ~0.53x)
        mean = sum(poly_lr_factor(i, 250000) for i in range(0, stop, 100)) / (stop // 100)
        assert mean == pytest.approx(0.78, abs=0.01)


def test_defaults_keep_horizon_max_iters_and_constant_disc_lr():
    cfg = load_config(REPO / "configs/synthcity/advent_lite0.yaml")
    assert cfg.schedule.poly_horizon is None and not cfg.optim.disc_poly
    opt, d_opt = optimizers(cfg)
    sched = build_poly_lr(cfg, opt, d_opt)
    s = cfg.schedule
    for it in (0, 17, s.max_iters // 2, s.max_iters - 1):
        sched.set_iteration(it)
        f = poly_lr_factor(it, s.max_iters, s.poly_power, s.warmup_iters, s.warmup_ratio)  # yesterday's formula
        assert opt.param_groups[0]["lr"] == cfg.optim.lr * f
        assert d_opt.param_groups[0]["lr"] == cfg.optim.disc_lr


def test_poly_horizon_shorter_than_the_run_is_rejected():
    with pytest.raises(ConfigError, match=r"schedule.poly_horizon.*>= schedule.max_iters \(10\), got 5"):
        config_from_dict({"model": {"encoder_name": "resnet18"}, "method": {"name": "oracle"},
                          "data": {"target": {"type": "cityscapes", "root": "x"}},
                          "schedule": {"max_iters": 10, "poly_horizon": 5}})


def tiny_cfg(root, method="advent", **sections):
    """The shared tiny config with a poly-decayed discriminator LR over a 10-iteration horizon."""
    optim = {"disc_lr": 1e-3, "disc_poly": True, **sections.pop("optim", {})}
    schedule = {"poly_horizon": 10, "keep_last": 5, **sections.pop("schedule", {})}
    return config_from_dict(tiny_cfg_dict(root, method, optim=optim, schedule=schedule, **sections))


@pytest.mark.slow
@pytest.mark.parametrize("reference", [False, True])
def test_both_loops_decay_the_discriminator_lr(synthcity, tmp_path, reference):
    torch.set_num_threads(1)
    trainer = (ReferenceTrainer if reference else Trainer)(tiny_cfg(synthcity, schedule={"max_iters": 3}),
                                                           work_dir=tmp_path, progress=False)
    seen = []
    step = trainer.d_optimizer.step

    def record(*a, **k):
        seen.append(trainer.d_optimizer.param_groups[0]["lr"])
        return step(*a, **k)

    trainer.d_optimizer.step = record
    trainer.train()
    assert seen == pytest.approx([1e-3 * (1 - i / 10) ** 0.9 for i in range(3)], rel=1e-12)


def test_constant_discriminator_lr_unless_disc_poly(synthcity, tmp_path):
    torch.set_num_threads(1)
    trainer = Trainer(tiny_cfg(synthcity, optim={"disc_poly": False}, schedule={"max_iters": 2}),
                      work_dir=tmp_path, progress=False)
    trainer.train()
    assert trainer.d_optimizer.param_groups[0]["lr"] == 1e-3
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.9 ** 0.9)  # horizon 10, it 1


@pytest.mark.slow
@pytest.mark.parametrize("paper_layout", [False, True])
def test_resume_keeps_the_discriminator_schedule_exact(paper_layout, synthcity, tmp_path):
    """Also as the ResNet-101 configs run (bf16, channels-last model and discriminators, GEMM classifiers and
    1x1 convolutions)."""
    torch.set_num_threads(1)
    cfg = (tiny_cfg(synthcity, model={"channels_last": True, "aspp_impl": "gemm", "pointwise_impl": "gemm"},
                    schedule={"amp": "bf16"})
           if paper_layout else tiny_cfg(synthcity))
    full = Trainer(cfg, work_dir=tmp_path / "full", progress=False)
    full.train()
    Trainer(cfg, work_dir=tmp_path / "split", progress=False).train(until=2)
    resumed = Trainer(cfg, work_dir=tmp_path / "split", resume=True, progress=False)
    assert resumed.iteration == 2
    assert all(p.is_contiguous(memory_format=torch.channels_last) == paper_layout
               for p in resumed.method.discriminator_parameters() if p.dim() == 4)
    resumed.train()
    for a, b in ((full.optimizer, resumed.optimizer), (full.d_optimizer, resumed.d_optimizer)):
        assert [g["lr"] for g in a.param_groups] == [g["lr"] for g in b.param_groups]
        assert [g["initial_lr"] for g in a.param_groups] == [g["initial_lr"] for g in b.param_groups]
    assert full.d_optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.7 ** 0.9, rel=1e-12)  # it 3 of 10
    for key in ("model", "method"):
        a, b = getattr(full, key).state_dict(), getattr(resumed, key).state_dict()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{key}.{k}"


def test_grl_ramps_follow_the_run_not_the_lr_horizon(synthcity, tmp_path):
    """DANN's reversal ramp reads iteration / max_iters, whatever schedule.poly_horizon is."""
    torch.set_num_threads(1)
    trainer = Trainer(tiny_cfg(synthcity, "dann", schedule={"max_iters": 2, "poly_horizon": 1000}),
                      work_dir=tmp_path, progress=False)
    progress = []
    step = trainer.method.generator_step

    def record(model, source, target, p):
        progress.append(p)
        return step(model, source, target, p)

    trainer.method.generator_step = record
    trainer.train()
    assert progress == [0.0, 0.5]


def test_synthia_final_metrics_carry_16_and_13_class_miou(synthcity, tmp_path):
    torch.set_num_threads(1)
    cfg = tiny_cfg(synthcity, "source_only", data={"num_classes": 16}, schedule={"max_iters": 1})
    Trainer(cfg, work_dir=tmp_path, progress=False).train()
    final = json.loads((tmp_path / "final_metrics.json").read_text())
    assert final["miou_16"] == final["miou"] and len(final["iou"]) == 16
    thirteen = [final["iou"][c] for c in SYNTHIA13_CLASSES if final["iou"][c] is not None]
    assert thirteen and final["miou_13"] == pytest.approx(sum(thirteen) / len(thirteen))
    evals = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any(r["kind"] == "eval" and "miou_13" in r for r in evals)


def test_best_of_snapshots_reports_every_checkpoint_and_labels_the_selection(synthcity, tmp_path, capsys):
    from seg_uda.config import save_config

    torch.set_num_threads(1)
    cfg = tiny_cfg(synthcity, "source_only", schedule={"max_iters": 2, "ckpt_interval": 1})
    Trainer(cfg, work_dir=tmp_path / "run", progress=False).train()
    save_config(cfg, tmp_path / "cfg.yaml")
    tool = load_tool("evaluate")
    ckpts = [str(tmp_path / "run" / "checkpoints" / f"iter_{i:07d}.pth") for i in (1, 2)]
    out_json = tmp_path / "best.json"
    assert tool.main([str(tmp_path / "cfg.yaml"), *ckpts, "--best-of-snapshots", "--out-json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "selected on the target val labels" in out and all(f"{c}: mIoU" in out for c in ckpts)
    res = json.loads(out_json.read_text())
    assert res["selection"] == "best_of_snapshots_on_target_val_labels"
    assert res["miou"] == max(res["per_checkpoint_miou"].values())
    assert res["best_checkpoint"] in ckpts
