"""Alignment diagnostics (seg_uda.methods.diagnostics) against hand-computed cases, and their wiring in training."""
import json
import math

import pytest
import torch
from torch import nn

from seg_uda.engine.trainer import Trainer
from seg_uda.methods import build_method
from seg_uda.methods.diagnostics import (binary_accuracy, class_histogram, gradient_norms, gradient_ratios,
                                         loss_groups, mean_entropy, step_diagnostics, total_variation)
from conftest import read_train_losses, tiny_cfg


def test_binary_accuracy_hand_computed():
    logits = torch.tensor([[2.0, -1.0], [0.5, -3.0]])  # > 0 means "target" (label 1)
    assert binary_accuracy(logits, 1.0) == pytest.approx(0.5)
    assert binary_accuracy(logits, 0.0) == pytest.approx(0.5)
    assert binary_accuracy(torch.tensor([3.0, 1.0, -2.0, 0.1]), 1.0) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="label must be 0 or 1"):
        binary_accuracy(logits, 0.5)


def test_mean_entropy_hand_computed():
    uniform = torch.zeros(2, 19, 3, 4)
    assert mean_entropy(uniform) == pytest.approx(1.0)
    # two classes with p = (0.25, 0.75): H = -(0.25 ln 0.25 + 0.75 ln 0.75) / ln 2 = 0.811278
    logits = torch.tensor([0.0, math.log(3.0)]).view(1, 2, 1, 1).expand(1, 2, 2, 2)
    assert mean_entropy(logits) == pytest.approx(0.811278, abs=1e-6)
    confident = torch.zeros(1, 5, 2, 2)
    confident[:, 2] = 50.0
    assert mean_entropy(confident) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="C >= 2"):
        mean_entropy(torch.zeros(1, 1, 2, 2))


def test_class_histogram_and_total_variation_hand_computed():
    labels = torch.tensor([[0, 0, 1, 255], [2, 2, 2, 255]])
    assert class_histogram(labels, 4) == pytest.approx([2 / 6, 1 / 6, 3 / 6, 0.0])
    assert class_histogram(torch.full((2, 2), 255), 3) == [0.0, 0.0, 0.0]
    assert total_variation([0.5, 0.5, 0.0], [0.0, 0.5, 0.5]) == pytest.approx(0.5)
    assert total_variation([1.0, 0.0], [1.0, 0.0]) == 0.0
    with pytest.raises(ValueError, match="different lengths"):
        total_variation([1.0], [0.5, 0.5])


class Toy(nn.Module):
    """feature f = a * x (backbone a), logit = b * f (head b)."""

    def __init__(self, a: float, b: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a, dtype=torch.float64))
        self.b = nn.Parameter(torch.tensor(b, dtype=torch.float64))

    def backbone_parameters(self):
        return [self.a]

    def head_parameters(self):
        return [self.b]


def test_gradient_ratio_on_a_toy_model():
    m = Toy(a=2.0, b=3.0)
    x = torch.tensor(5.0, dtype=torch.float64)
    logit = m.b * (m.a * x)
    # seg = logit: d/da = b x = 15, d/db = a x = 10.  adv = a^2: d/da = 2a = 4, d/db = 0.
    # ent = 0.5 * logit^2 = 0.5 (abx)^2 = 450: d/da = (abx) b x = 30 * 15 = 450, d/db = 30 * 10 = 300.
    losses = {"seg_main": logit, "adv_main": m.a ** 2, "ent_main": 0.5 * logit ** 2}
    params = {"backbone": [m.a], "head": [m.b]}
    out = gradient_ratios(losses, params)
    assert out["gradnorm_seg_backbone"] == pytest.approx(15.0)
    assert out["gradnorm_seg_head"] == pytest.approx(10.0)
    assert out["gradratio_adv_backbone"] == pytest.approx(4.0 / 15.0)
    assert out["gradratio_adv_head"] == pytest.approx(0.0)
    assert out["gradratio_ent_backbone"] == pytest.approx(450.0 / 15.0)
    assert out["gradratio_ent_head"] == pytest.approx(300.0 / 10.0)
    assert m.a.grad is None and m.b.grad is None  # diagnostics leave .grad alone
    # the main and aux terms of one group are summed before the norm
    grouped = loss_groups({"seg_main": logit, "seg_aux": 0.1 * logit, "adv_main": m.a})
    assert sorted(grouped) == ["adv", "seg"]
    assert gradient_norms(grouped["seg"], params)["backbone"] == pytest.approx(1.1 * 15.0)


def test_perfect_discriminator_reads_100_percent():
    method = build_method("advent", num_classes=3, multi_level=True)
    cache = {f"{d}_{lvl}": torch.full((2, 3, 4, 4), v) for lvl in ("main", "aux")
             for d, v in (("src", 0.0), ("tgt", 1.0))}
    for level in ("main", "aux"):  # D(map) = 20 * mean(map) - 10: -10 (source) on source maps, +10 on target maps
        conv = nn.Conv2d(3, 1, 1)
        nn.init.constant_(conv.weight, 20.0 / 3)
        nn.init.constant_(conv.bias, -10.0)
        method.discriminators[level] = conv
    out = method.diagnostics(cache)
    for key in ("disc_acc_main_src", "disc_acc_main_tgt", "disc_acc_aux_src", "disc_acc_aux_tgt"):
        assert out[key] == 1.0
    for level in ("main", "aux"):  # the inverted discriminator is always wrong
        nn.init.constant_(method.discriminators[level].weight, -20.0 / 3)
        nn.init.constant_(method.discriminators[level].bias, 10.0)
    assert method.diagnostics(cache)["disc_acc_main_tgt"] == 0.0


def test_dann_domain_classifier_accuracy():
    method = build_method("dann", num_classes=3, feat_channels=4)
    method._last_domain_logits = (torch.tensor([-1.0, -2.0, 3.0, -0.5]), torch.tensor([1.0, 2.0, -1.0, 4.0]))
    out = method.diagnostics({})
    assert out["disc_acc_feat_src"] == pytest.approx(0.75) and out["disc_acc_feat_tgt"] == pytest.approx(0.75)


class Seg(nn.Module):
    """A 1x1-conv segmenter returning the {"out": logits} dict the methods expect."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Conv2d(3, 4, 1)
        self.head = nn.Conv2d(4, 3, 1)

    def forward(self, x):
        return {"out": self.head(torch.relu(self.backbone(x)))}

    def backbone_parameters(self):
        return self.backbone.parameters()

    def head_parameters(self):
        return self.head.parameters()


def test_step_diagnostics_entropy_and_histograms_of_the_last_step():
    torch.manual_seed(0)
    model, method = Seg(), build_method("minent", num_classes=3)
    source = {"image": torch.randn(2, 3, 4, 4), "label": torch.tensor([0, 1, 255, 2]).repeat(2, 4, 1)}
    target = {"image": torch.randn(2, 3, 4, 4)}
    losses, cache = method.generator_step(model, source, target, 0.0)
    out = step_diagnostics(model, method, losses, cache)
    with torch.no_grad():
        src, tgt = model(source["image"])["out"], model(target["image"])["out"]
    assert out["entropy_src"] == pytest.approx(mean_entropy(src))
    assert out["entropy_tgt"] == pytest.approx(mean_entropy(tgt))
    assert out["hist_src_label"] == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    assert out["hist_tgt_pred"] == pytest.approx(class_histogram(tgt.argmax(1), 3))
    assert out["hist_tv_tgt_pred_vs_src_label"] == pytest.approx(
        total_variation(out["hist_tgt_pred"], out["hist_src_label"]))
    assert {"gradratio_ent_backbone", "gradratio_ent_head"} <= set(out)
    # the ratio is the norm of the entropy term's gradient over the seg term's, over the same parameters
    grads = torch.autograd.grad(losses["ent_main"], list(model.backbone_parameters()), retain_graph=True)
    seg = torch.autograd.grad(losses["seg_main"], list(model.backbone_parameters()), retain_graph=True)
    norm = lambda gs: math.sqrt(sum(float(g.pow(2).sum()) for g in gs))  # noqa: E731
    assert out["gradratio_ent_backbone"] == pytest.approx(norm(grads) / norm(seg), rel=1e-5)


@pytest.mark.slow
def test_diagnostics_are_logged_and_do_not_change_training(synthcity, tmp_path):
    torch.set_num_threads(1)
    runs = {}
    for interval in (0, 2):
        cfg = tiny_cfg(synthcity, "advent", max_iters=4,
                       schedule={"max_iters": 4, "eval_interval": 0, "ckpt_interval": 4, "log_interval": 1,
                                 "diagnostics_interval": interval})
        work = tmp_path / f"d{interval}"
        Trainer(cfg, work_dir=work, progress=False).train()
        runs[interval] = work
    assert read_train_losses(runs[0]) == read_train_losses(runs[2])
    diag = [json.loads(line) for line in (runs[2] / "metrics.jsonl").read_text().splitlines()]
    diag = [r for r in diag if r["kind"] == "diag"]
    assert [r["iter"] for r in diag] == [2, 4]
    for key in ("disc_acc_main_src", "disc_acc_aux_tgt", "entropy_src", "entropy_tgt", "gradratio_adv_backbone",
                "gradratio_adv_head", "hist_tgt_pred", "hist_src_label"):
        assert key in diag[0]
    assert 0.0 <= diag[0]["disc_acc_main_src"] <= 1.0 and len(diag[0]["hist_tgt_pred"]) == 19
    assert not any(r["kind"] == "diag" for r in map(json.loads, (runs[0] / "metrics.jsonl").read_text().splitlines()))
