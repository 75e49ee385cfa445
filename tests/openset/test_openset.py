"""Open-set head: OSBP loss and gradient reversal, label protocols, training + evaluation (the scoring functions:
test_openset_metrics.py)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from conftest import tiny_cfg_dict
from seg_uda.config import ConfigError, config_from_dict
from seg_uda.methods import build_method
from seg_uda.methods.osbp import osbp_unknown_loss
from seg_uda.openset import BUS_PRIVATE_CLASSES, OpenSetDataset, OpenSetProtocol

K = 3


# ------------------------------------------------------------------ the unknown loss
def _logits_with_unknown_prob(p_unk: float, k: int = 2) -> torch.Tensor:
    """[1, k+1, 1, 1] logits whose softmax gives p_unk to the last channel and spreads the rest evenly."""
    probs = [(1 - p_unk) / k] * k + [p_unk]
    return torch.log(torch.tensor(probs)).view(1, k + 1, 1, 1)


def test_unknown_loss_matches_formula():
    assert osbp_unknown_loss(_logits_with_unknown_prob(0.5)).item() == pytest.approx(math.log(2), rel=1e-6)
    # p = 0.25, t = 0.5: -(0.5 log 0.25 + 0.5 log 0.75) = 0.5 (log 4 + log 4/3)
    expected = 0.5 * (math.log(4) + math.log(4 / 3))
    assert osbp_unknown_loss(_logits_with_unknown_prob(0.25)).item() == pytest.approx(expected, rel=1e-6)
    # other t: -(t log p + (1-t) log(1-p)) with t = 0.2, p = 0.25
    assert osbp_unknown_loss(_logits_with_unknown_prob(0.25), t=0.2).item() == pytest.approx(
        -(0.2 * math.log(0.25) + 0.8 * math.log(0.75)), rel=1e-6)


# ------------------------------------------------------------------ gradient reversal
def _tiny_deeplab(multi_level: bool = True, num_classes: int = K + 1) -> nn.Module:
    from seg_uda.models import build_model

    torch.manual_seed(0)
    return build_model("deeplabv2", num_classes=num_classes, encoder_name="resnet18", encoder_weights=None,
                       multi_level=multi_level, bn_policy="frozen")


def _grads(model: nn.Module, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_forward_split_is_identical_to_forward():
    model = _tiny_deeplab().eval()
    x = torch.randn(1, 3, 32, 32)
    plain = model(x)
    split = model.forward_head(model.forward_features(x))
    for key in ("out", "aux", "feat"):
        assert torch.equal(plain[key], split[key])
    rev = model(x, grl_lambda=1.0)
    assert torch.equal(rev["out_rev"], plain["out"]) and torch.equal(rev["aux_rev"], plain["aux"])


@pytest.mark.parametrize("lambd", [1.0, 0.5])
def test_grl_reverses_feature_gradient_only(lambd):
    model = _tiny_deeplab(multi_level=False)
    x = torch.randn(1, 3, 32, 32)
    normal = _grads(model, osbp_unknown_loss(model(x)["out"]))
    reversed_ = _grads(model, osbp_unknown_loss(model(x, grl_lambda=lambd)["out_rev"]))
    for name, g in normal.items():
        if name.startswith("classifier."):  # classifier: the normal sign (it minimises the loss)
            assert torch.allclose(reversed_[name], g, atol=1e-7), name
        else:  # feature extractor: reversed and scaled (it maximises the loss)
            assert name.startswith("encoder.")
            assert torch.allclose(reversed_[name], -lambd * g, rtol=1e-4, atol=1e-8), name
    assert any(n.startswith("encoder.") and g.abs().sum() > 0 for n, g in normal.items())


def test_deeplabv3plus_grl_output():
    from seg_uda.models import build_model

    model = build_model("deeplabv3plus", num_classes=K + 1, encoder_name="resnet18", encoder_weights=None).eval()
    x = torch.randn(1, 3, 32, 32)
    out = model(x, grl_lambda=1.0)
    assert torch.equal(out["out_rev"], model(x)["out"])


# ------------------------------------------------------------------ the osbp methods
class GRLStub(nn.Module):
    """Tiny segmenter with K+1 outputs supporting forward(x, grl_lambda)."""

    def __init__(self, multi_level: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Conv2d(4, K + 1, 1)
        self.aux_head = nn.Conv2d(4, K + 1, 1) if multi_level else None

    def forward(self, x, grl_lambda=None):
        from seg_uda.models import grad_reverse

        feat = self.body(x)
        out = {"out": self.head(feat), "feat": feat}
        if self.aux_head is not None:
            out["aux"] = self.aux_head(feat)
        if grl_lambda is not None:
            r = grad_reverse(feat, grl_lambda)
            out["out_rev"] = self.head(r)
            if self.aux_head is not None:
                out["aux_rev"] = self.aux_head(r)
        return out


def _batch(seed: int, labelled: bool = True) -> dict:
    g = torch.Generator().manual_seed(seed)
    b = {"image": torch.randn(1, 3, 32, 32, generator=g)}
    if labelled:
        b["label"] = torch.randint(0, K, (1, 32, 32), generator=g)
        b["label"][0, :4] = 255
    return b


@pytest.mark.parametrize("multi_level", [False, True], ids=["single", "multi"])
@pytest.mark.parametrize("name,extra,disc", [
    ("osbp", set(), set()),
    ("osbp_minent", {"ent_main"}, set()),
    ("osbp_advent", {"adv_main"}, {"d_main_src", "d_main_tgt"}),
])
def test_osbp_forward_backward(name, extra, disc, multi_level):
    torch.manual_seed(0)
    model = GRLStub(multi_level)
    method = build_method(name, num_classes=K, multi_level=multi_level)
    losses, cache = method.generator_step(model, _batch(0), _batch(1, labelled=False), progress=0.5)
    names = {"seg_main", "unk_main"} | extra
    if multi_level:
        names |= {n.replace("main", "aux") for n in names}
        disc = disc | {n.replace("main", "aux") for n in disc}
    assert set(losses) == names
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
    d_losses = method.discriminator_step(cache)
    assert set(d_losses) == disc
    if d_losses:
        sum(d_losses.values()).backward()
        assert all(p.grad is not None for p in method.discriminator_parameters())
        assert method.discriminators["main"].in_channels == K  # D sees the K known classes only


def test_osbp_rejects_unknown_id_in_source_labels_and_closed_heads():
    method = build_method("osbp", num_classes=K)
    src = _batch(0)
    src["label"][0, 5, 5] = K  # the unknown id must never be supervised in the source
    with pytest.raises(ValueError, match="unknown id"):
        method.generator_step(GRLStub(False), src, _batch(1, labelled=False), progress=0.1)
    closed = nn.Conv2d(3, K, 1)
    with pytest.raises((ValueError, TypeError)):
        method.generator_step(lambda x, grl_lambda=None: {"out": closed(x)}, _batch(0), _batch(1, False), 0.1)


def test_osbp_source_ce_known_uses_only_known_channels():
    model = GRLStub(False)
    src, tgt = _batch(0), _batch(1, labelled=False)
    from seg_uda.methods.losses import seg_loss

    method = build_method("osbp", num_classes=K, source_ce="known")
    losses, _ = method.generator_step(model, src, tgt, progress=0.5)
    with torch.no_grad():
        expected = seg_loss(model(src["image"])["out"][:, :K], src["label"])
    assert losses["seg_main"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_confidence_pseudo_labels_hand_made():
    from seg_uda.methods.osbp import confidence_pseudo_labels

    # 4 pixels, K=2: confidences 0.9 (class 0), 0.6 (class 1), 0.55 (class 0), 0.8 (class 1)
    p0 = torch.tensor([0.9, 0.4, 0.55, 0.2]).view(1, 1, 2, 2)
    probs = torch.cat([p0, 1 - p0], 1)
    pl = confidence_pseudo_labels(probs, unknown_fraction=0.25, known_threshold=0.7, unknown_id=2)
    assert pl.flatten().tolist() == [0, 255, 2, 1]  # lowest 25% -> unknown; 0.6 < 0.7 -> ignored
    pl = confidence_pseudo_labels(probs, unknown_fraction=0.5, known_threshold=0.0, unknown_id=2)
    assert pl.flatten().tolist() == [0, 2, 2, 1]
    assert confidence_pseudo_labels(probs, 0.0, 0.0, 2).flatten().tolist() == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="unknown_fraction"):
        confidence_pseudo_labels(probs, 1.0, 0.0, 2)


@pytest.mark.parametrize("multi_level", [False, True], ids=["single", "multi"])
def test_osbp_pseudo_label_loss_is_ce_on_own_confidence_labels(multi_level):
    from seg_uda.methods.dann import grl_schedule
    from seg_uda.methods.losses import seg_loss
    from seg_uda.methods.osbp import confidence_pseudo_labels

    torch.manual_seed(0)
    model = GRLStub(multi_level)
    src, tgt = _batch(0), _batch(1, labelled=False)
    method = build_method("osbp", num_classes=K, multi_level=multi_level, pseudo_label=True,
                          pl_unknown_fraction=0.1, pl_known_threshold=0.3, lambda_pl_main=2.0, lambda_pl_aux=0.5)
    losses, _ = method.generator_step(model, src, tgt, progress=0.4)
    assert {"pl_main", "unk_main", "seg_main"} <= set(losses) and (("pl_aux" in losses) == multi_level)
    with torch.no_grad():
        out = model(tgt["image"])
        probs = torch.softmax(torch.nn.functional.interpolate(out["out"][:, :K], size=(32, 32), mode="bilinear",
                                                              align_corners=True), 1)
        pl = confidence_pseudo_labels(probs, 0.1, 0.3, K)
        assert (pl == K).float().mean().item() == pytest.approx(0.1, abs=0.01)
        expected = grl_schedule(0.4) * 2.0 * seg_loss(out["out"], pl)
    assert losses["pl_main"].item() == pytest.approx(expected.item(), rel=1e-5)
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in model.parameters())


# ------------------------------------------------------------------ protocols
def test_bus_protocol_luts():
    p = OpenSetProtocol(19, BUS_PRIVATE_CLASSES)
    assert p.num_known == 13 and p.unknown_id == 13
    assert p.private_ids == (5, 7, 11, 12, 14, 16)  # pole, traffic sign, person, rider, truck, train
    label = np.array([[0, 5, 6, 7, 8, 11], [12, 13, 14, 15, 16, 18], [255, 1, 2, 3, 4, 17]])
    src = p.remap_source(label)
    tgt = p.remap_target(label)
    # known classes compacted in order: 0..4 keep ids, 6 (light) -> 5, 8 (vegetation) -> 6, 13 (car) -> 9 ...
    assert src.tolist() == [[0, 255, 5, 255, 6, 255], [255, 9, 255, 10, 255, 12], [255, 1, 2, 3, 4, 11]]
    assert tgt.tolist() == [[0, 13, 5, 13, 6, 13], [13, 9, 13, 10, 13, 12], [255, 1, 2, 3, 4, 11]]
    assert not (src == p.unknown_id).any()  # source labels never contain K
    assert p.known_names[5] == "traffic light" and p.eval_names[-1] == "unknown"
    with pytest.raises(ValueError, match="unknown private class name"):
        OpenSetProtocol(19, ["dog"])


class _ListDataset:
    def __init__(self, items):
        self.items = items
        self.class_names = tuple(f"c{i}" for i in range(4))
        self.palette = tuple((i, i, i) for i in range(4))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_private_pixels_never_supervise_source_and_merge_into_unknown_in_target():
    p = OpenSetProtocol(4, [2])  # K = 3 known (0, 1, 3 -> 2), class 2 private
    label = torch.tensor([[0, 1, 2, 3], [255, 3, 2, 1]])
    private = torch.tensor([[0, 0, 0, 1], [0, 2, 0, 0]])  # dataset-marked private pixels (e.g. animal, tuk-tuk)
    ds = _ListDataset([{"image": torch.zeros(3, 2, 4), "label": label, "private": private}])
    src = OpenSetDataset(ds, p, "source")[0]["label"]
    assert src.tolist() == [[0, 1, 255, 255], [255, 255, 255, 1]]
    assert not (src == p.unknown_id).any()
    val = OpenSetDataset(ds, p, "val")
    assert val[0]["label"].tolist() == [[0, 1, 3, 3], [255, 3, 3, 1]]
    assert val.class_names == ("c0", "c1", "c3", "unknown") and val.palette[-1] == (255, 0, 255)
    assert len(val) == 1 and val.items is ds.items  # other attributes pass through


# ------------------------------------------------------------------ config + end to end


def tiny_openset_cfg(root, method="osbp", **openset):
    """The shared tiny config, open-set: private-id val labels, 2 iterations."""
    d = tiny_cfg_dict(root, method, name=f"tiny_open_{method}", schedule={"max_iters": 2},
                      data={"openset": {"enabled": True, **openset}})
    d["data"]["val"]["load_private"] = True
    return config_from_dict(d)


def test_config_validation(synthcity):
    with pytest.raises(ConfigError, match="open-set"):
        config_from_dict({**tiny_openset_cfg(synthcity).to_dict(), "data": {
            **tiny_openset_cfg(synthcity).to_dict()["data"], "openset": {"enabled": False}}})
    with pytest.raises(ConfigError, match="private_classes"):
        tiny_openset_cfg(synthcity, private_classes=["dragon"])
    d = tiny_openset_cfg(synthcity).to_dict()
    d["data"]["val"]["load_private"] = False
    with pytest.raises(ConfigError, match="no pixel can be unknown"):
        config_from_dict(d)
    from seg_uda.builders import model_num_outputs, num_known_classes

    bus = tiny_openset_cfg(synthcity, private_classes=list(BUS_PRIVATE_CLASSES))
    assert num_known_classes(bus) == 13 and model_num_outputs(bus) == 14
    closed = tiny_openset_cfg(synthcity, method="source_only", private_classes=list(BUS_PRIVATE_CLASSES))
    assert model_num_outputs(closed) == 13


def test_tiny_openset_training_and_evaluation(synthcity, tmp_path, capsys):
    from seg_uda.engine.trainer import Trainer

    torch.set_num_threads(1)
    cfg = tiny_openset_cfg(synthcity, "osbp_advent")
    trainer = Trainer(cfg, work_dir=tmp_path, progress=False)
    assert trainer.model.classifier.conv2d_list[0].out_channels == 20  # 19 known + unknown
    result = trainer.train()
    for key in ("common_miou", "h_score", "auroc", "ap", "fpr95"):
        assert key in result
    assert result["score"] == "head" and "unknown" in result["iou"]
    recs = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in recs if r["kind"] == "train"]
    assert {"seg_main", "unk_main", "unk_aux", "adv_main"} <= set(train[0])
    # the evaluation tool on the checkpoint prints the open-set summary
    from seg_uda.cli import evaluate as evaluate_tool

    ckpt = tmp_path / "checkpoints" / "last.pth"
    assert evaluate_tool.main([str(ckpt), "--device", "cpu", "--out-json", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "Common mIoU" in out and "Private IoU" in out and "H-score" in out
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved["num_known"] == 19 and "private_iou" in saved
    # the label-free score (no target label) has the unknown bin, whose share is the model's own unknown argmax
    lf_json = tmp_path / "lf.json"
    assert evaluate_tool.main([str(ckpt), "--device", "cpu", "--label-free", "--out-json", str(lf_json)]) == 0
    lf = json.loads(lf_json.read_text())
    assert list(lf["target_prediction_histogram"])[-1] == "unknown" and len(lf["target_prediction_histogram"]) == 20
    assert lf["source_label_histogram"]["unknown"] == 0.0
    assert lf["unknown_fraction"] == lf["target_prediction_histogram"]["unknown"]
    assert sum(lf["target_prediction_histogram"].values()) == pytest.approx(1.0)


def test_tiny_open_self_training_reports_student_and_teacher(synthcity, tmp_path):
    """`open_self_training` trains a (K+1)-way student and teacher; both are scored open-set at the end."""
    from seg_uda.engine.trainer import Trainer

    torch.set_num_threads(1)
    trainer = Trainer(tiny_openset_cfg(synthcity, "open_self_training"), work_dir=tmp_path, progress=False)
    assert trainer.model.classifier.conv2d_list[0].out_channels == 20  # 19 known + unknown
    assert trainer.method.teacher.classifier.conv2d_list[0].out_channels == 20
    result = trainer.train()
    teacher = json.loads((tmp_path / "final_metrics_teacher.json").read_text())
    for res in (result, teacher):
        assert {"common_miou", "private_iou", "h_score", "auroc"} <= set(res) and res["score"] == "head"
        assert "unknown" in res["iou"]
    recs = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {"seg_main", "mix_main"} <= set(next(r for r in recs if r["kind"] == "train"))


def test_posthoc_evaluation_with_calibrated_threshold(synthcity, tmp_path, capsys):
    from seg_uda.engine.trainer import Trainer

    torch.set_num_threads(1)
    holdout = tmp_path / "holdout.txt"
    holdout.write_text("00003\n00004\n")
    cfg = tiny_openset_cfg(synthcity, "source_only",
                           calibration={"type": "gta5", "root": str(synthcity / "game"), "list_file": str(holdout)})
    cfg.schedule.max_iters = 1
    Trainer(cfg, work_dir=tmp_path, progress=False).train()
    from seg_uda.cli import evaluate as evaluate_tool

    ckpt = str(tmp_path / "checkpoints" / "last.pth")
    for score in ("msp", "entropy"):
        assert evaluate_tool.main([ckpt, "--device", "cpu", "--unknown-score", score, "--unknown-threshold", "auto",
                                   "--out-json", str(tmp_path / f"{score}.json")]) == 0
        res = json.loads((tmp_path / f"{score}.json").read_text())
        assert res["score"] == score and res["threshold"] is not None
    out = capsys.readouterr().out
    assert "calibrated msp threshold" in out and "H-score" in out
