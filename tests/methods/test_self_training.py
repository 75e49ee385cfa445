"""Mean-teacher self-training: the EMA update against its formula, ClassMix masks and mixed labels, the
confidence weight and ignore margins on hand-made probabilities, the teacher getting no gradient, the weighted
loss by hand, the augmentations, and the teacher in checkpoints, resume and the final evaluation; the open-set
variant's unknown pseudo-labels and declarations (its training: tests/openset/test_openset.py)."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import tiny_cfg_dict
from seg_uda.config import ConfigError, config_from_dict
from seg_uda.engine.trainer import Trainer
from seg_uda.methods import METHODS, build_method
from seg_uda.methods.mixing import (
    classmix_masks, color_jitter, gaussian_blur, patch_mask, sample_generators, strong_augment,
)
from seg_uda.methods.self_training import SelfTraining, ema_alpha, least_confident_unknown, weighted_seg_loss

K = 4


class Stub(nn.Module):
    """A 1x1-conv segmenter at full resolution: {"out": logits} (K outputs, or K+1 with ``unknown``)."""

    def __init__(self, unknown: bool = False) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, K + int(unknown), 1)

    def forward(self, x: torch.Tensor) -> dict:
        return {"out": self.head(x)}


class FixedLogits(nn.Module):
    """A 'teacher' that returns given logits whatever the input."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = nn.Parameter(logits, requires_grad=False)

    def forward(self, x: torch.Tensor) -> dict:
        return {"out": self.logits.expand(x.shape[0], -1, -1, -1)}


def test_ema_alpha_follows_daformer():
    assert ema_alpha(0, 0.999) == 0.0  # the first update copies the student
    assert ema_alpha(9, 0.999) == pytest.approx(0.9)
    assert ema_alpha(5000, 0.999) == 0.999


def test_ema_update_matches_the_formula():
    torch.manual_seed(0)
    student = Stub()
    method = build_method("self_training", model=student, num_classes=K)
    teacher_before = [p.clone() for p in method.teacher.parameters()]
    with torch.no_grad():
        for p in student.parameters():
            p.add_(torch.randn_like(p))
    method.after_optimizer_step(student, iteration=19)
    a = ema_alpha(19, 0.999)
    for t0, t, s in zip(teacher_before, method.teacher.parameters(), student.parameters()):
        torch.testing.assert_close(t, a * t0 + (1 - a) * s, rtol=0, atol=1e-6)
    method.after_optimizer_step(student, iteration=0)  # alpha 0: the teacher becomes the student
    for t, s in zip(method.teacher.parameters(), student.parameters()):
        torch.testing.assert_close(t, s)


def test_classmix_mask_takes_half_the_classes_and_never_ignored_pixels():
    torch.manual_seed(0)
    labels = torch.tensor([[[0, 0, 1, 1], [2, 2, 3, 255]], [[4, 4, 4, 255], [4, 4, 4, 4]]])
    mask = classmix_masks(labels)
    assert mask.dtype == torch.bool and mask.shape == labels.shape
    for lbl, m in zip(labels, mask):
        present = set(lbl[lbl != 255].tolist())
        chosen = set(lbl[m].tolist())
        assert len(chosen) == math.ceil(len(present) / 2) and chosen <= present
        assert torch.equal(m, torch.isin(lbl, torch.tensor(sorted(chosen))))  # whole classes, with their pixels
        assert not m[lbl == 255].any()


def test_mixed_image_and_label_come_from_the_image_the_mask_says():
    torch.manual_seed(1)
    method = SelfTraining(K, teacher=Stub(), color_jitter=0.0, blur=False)  # no strong augmentation
    src = {"image": torch.rand(2, 3, 8, 8), "label": torch.randint(0, K, (2, 8, 8))}
    tgt = torch.rand(2, 3, 8, 8) + 5.0  # distinguishable values
    pl = torch.full((2, 8, 8), 7)
    weight = torch.full((2, 8, 8), 0.25)
    torch.manual_seed(2)
    image, labels, weights = method.mix(src, tgt, pl, weight)
    torch.manual_seed(2)
    mask = classmix_masks(src["label"])
    assert mask.any() and (~mask).any()
    m3 = mask[:, None].expand_as(tgt)
    assert torch.equal(image[m3], src["image"][m3]) and torch.equal(image[~m3], tgt[~m3])
    assert torch.equal(labels[mask], src["label"][mask]) and (labels[~mask] == 7).all()
    assert (weights[mask] == 1).all() and (weights[~mask] == 0.25).all()


def test_confidence_weight_and_ignore_margins_on_hand_made_probabilities():
    # image 0: 6 of 16 pixels above tau, image 1: none; the 4 x 4 input is 'reference_height' 8 -> margins halve
    logits = torch.zeros(1, K, 4, 4)
    logits[0, 2, :, :] = 10.0  # p(2) = e^10 / (e^10 + 3) = 0.99986 > 0.968 everywhere
    logits[0, 2, 2:, :2] = 0.0  # 4 pixels at chance
    logits[0, 2, 0, 2:] = 0.0  # ...2 more: 10 confident pixels
    teacher = FixedLogits(logits)
    method = SelfTraining(K, teacher=teacher, pl_ignore_top=2, pl_ignore_bottom=4, reference_height=8)
    labels, weight = method.pseudo_labels(torch.zeros(1, 3, 4, 4))
    assert (labels[0][logits[0, 2] > 0] == 2).all()
    expected = torch.full((4, 4), 10 / 16)
    expected[:1] = 0  # top 2 px at height 8 -> 1 row at height 4
    expected[2:] = 0  # bottom 4 px -> 2 rows
    torch.testing.assert_close(weight[0], expected)
    assert method.diagnostics({})["pl_confident_fraction"] == pytest.approx(10 / 16)
    plain = SelfTraining(K, teacher=teacher, confidence_weight=False)
    assert (plain.pseudo_labels(torch.zeros(1, 3, 4, 4))[1] == 1).all()


def test_weighted_seg_loss_by_hand():
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 0.0]]]])  # [1, 2 classes, 1, 2]
    labels = torch.tensor([[[0, 255]]])
    weight = torch.tensor([[[0.5, 1.0]]])
    ce0 = -F.log_softmax(torch.tensor([2.0, 0.0]), 0)[0]
    assert weighted_seg_loss(logits, labels, weight).item() == pytest.approx(float(0.5 * ce0 / 2))


def test_teacher_gets_no_gradient_and_is_not_optimised():
    torch.manual_seed(0)
    student = Stub()
    method = build_method("self_training", model=student, num_classes=K, mic=True)
    src = {"image": torch.randn(2, 3, 8, 8), "label": torch.randint(0, K, (2, 8, 8))}
    tgt = {"image": torch.randn(2, 3, 8, 8)}
    losses, _ = method.generator_step(student, src, tgt, 0.5)
    assert set(losses) == {"seg_main", "mix_main", "mic_main"}
    sum(losses.values()).backward()
    assert all(p.grad is None and not p.requires_grad for p in method.teacher.parameters())
    assert all(p.grad is not None for p in student.parameters())
    assert method.extra_parameters() == [] and method.discriminator_parameters() == []


def test_advent_terms_join_by_config():
    torch.manual_seed(0)
    student = Stub()
    method = build_method("self_training", model=student, num_classes=K, adversarial=True, entropy=True, disc_ndf=4)
    assert method.has_discriminators
    src = {"image": torch.randn(2, 3, 64, 64), "label": torch.randint(0, K, (2, 64, 64))}
    losses, cache = method.generator_step(student, src, {"image": torch.randn(2, 3, 64, 64)}, 0.5)
    assert {"adv_main", "ent_main", "mix_main"} <= set(losses)
    assert set(method.discriminator_step(cache)) == {"d_main_src", "d_main_tgt"}


def test_augmentations_keep_range_shape_and_identity_cases():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 20, 30)
    torch.testing.assert_close(color_jitter(x, 0.0), x, rtol=0, atol=1e-5)  # strength 0: the identity
    y = color_jitter(x, 0.2)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1 and not torch.allclose(y, x)
    flat = torch.full((1, 3, 20, 30), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, 1.0), flat)  # a blur keeps constants
    assert gaussian_blur(x, 0.5).shape == x.shape
    assert torch.equal(strong_augment(x, [0, 0, 0], [1, 1, 1], jitter=0.0, blur=False), x)
    m = patch_mask(200, (64, 64), patch=8, ratio=0.7, device=torch.device("cpu"))
    assert m.shape == (200, 1, 64, 64) and set(m.unique().tolist()) <= {0.0, 1.0}
    assert (1 - m).mean().item() == pytest.approx(0.7, abs=0.02)
    blocks = m[:, :, ::8, ::8].repeat_interleave(8, 2).repeat_interleave(8, 3)
    assert torch.equal(blocks, m)  # constant on 8 x 8 patches


@pytest.mark.slow
def test_trainer_saves_resumes_and_reports_the_teacher(synthcity, tmp_path):
    """The teacher is in the checkpoint; stop-and-resume equals an uninterrupted run bit for bit (teacher
    included); the final evaluation reports the student as the model and the teacher beside it."""
    torch.set_num_threads(1)
    d = tiny_cfg_dict(synthcity, "self_training", schedule={"max_iters": 4, "ckpt_interval": 2})
    d["method"].update({"mic": True, "ema": 0.9})
    full = Trainer(config_from_dict(d), work_dir=tmp_path / "full", progress=False)
    full.train()
    part = Trainer(config_from_dict(d), work_dir=tmp_path / "part", progress=False)
    part.train(until=2)
    resumed = Trainer(config_from_dict(d), work_dir=tmp_path / "part", progress=False, resume=True)
    assert resumed.iteration == 2
    resumed.train()
    a, b = full.method.state_dict(), resumed.method.state_dict()
    assert any(k.startswith("teacher.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    teacher = json.loads((tmp_path / "full" / "final_metrics_teacher.json").read_text())
    student = json.loads((tmp_path / "full" / "final_metrics.json").read_text())
    assert "miou" in teacher and "miou" in student
    kinds = [json.loads(line)["kind"] for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert "eval" in kinds and "eval_teacher" in kinds


def test_draws_follow_the_sample_not_the_batch_split():
    """Each image's ClassMix, augmentation and MIC draws come from its own sample seed: a batch of 2 gives what
    its two halves give (as 2 ranks x 1 image vs 1 process x 2 images), and reruns give the same."""
    torch.manual_seed(0)
    method = build_method("self_training", model=Stub(), num_classes=K, mic=True, color_jitter_p=1.0)
    src = {"image": torch.randn(2, 3, 16, 16), "label": torch.randint(0, K, (2, 16, 16))}
    tgt = {"image": torch.randn(2, 3, 16, 16), "sample_seed": torch.tensor([11, 12])}
    pl, w = torch.randint(0, K, (2, 16, 16)), torch.rand(2, 16, 16)

    def run(i: slice):
        gens = sample_generators({"sample_seed": tgt["sample_seed"][i]}, len(tgt["image"][i]))
        sub = {k: v[i] for k, v in src.items()}
        mixed = method.mix(sub, tgt["image"][i], pl[i], w[i], gens)
        mask = patch_mask(len(tgt["image"][i]), (16, 16), 4, 0.7, torch.device("cpu"), gens)
        return (*mixed, mask)

    whole, first, second = run(slice(0, 2)), run(slice(0, 1)), run(slice(1, 2))
    for a, b, c in zip(whole, first, second):
        torch.testing.assert_close(a, torch.cat([b, c]))
    for a, b in zip(whole, run(slice(0, 2))):
        torch.testing.assert_close(a, b)
    assert sample_generators({}, 2) == [None, None]  # hand-made batches: the global generator


# ------------------------------------------------------------------ open set (`open_self_training`)
def test_least_confident_unknown_per_image_with_ties():
    conf = torch.tensor([[[0.9, 0.2], [0.5, 0.1]], [[0.3, 0.3], [0.8, 0.9]]])
    labels = torch.tensor([[[1, 2], [3, 0]], [[2, 2], [1, 1]]])
    out = least_confident_unknown(conf, labels, 0.25, 7)  # 1 pixel of each image's 4
    assert out.tolist() == [[[1, 2], [3, 7]], [[7, 7], [1, 1]]]  # image 1: both pixels tied at the cut
    assert least_confident_unknown(conf, labels, 0.5, 7).tolist() == [[[1, 7], [3, 7]], [[7, 7], [1, 1]]]
    assert torch.equal(least_confident_unknown(conf, labels, 0.0, 7), labels)
    halves = torch.cat([least_confident_unknown(conf[i:i + 1], labels[i:i + 1], 0.25, 7) for i in range(2)])
    assert torch.equal(halves, out)  # per image: a rank's share of the batch gets the same labels


def test_open_set_pseudo_labels_on_hand_made_logits():
    logits = torch.zeros(1, K + 1, 4, 4)
    logits[0, 1] = 10.0  # known class 1 at p = e^10 / (e^10 + 3) > 0.968 ...
    logits[0, 1, 0, 0] = 0.0  # ... but one pixel at chance among the known classes (the least confident)
    logits[0, 1, 3, 3] = 4.0  # p = e^4 / (e^4 + 3) = 0.948: labelled 1, not confident
    logits[0, K] = 50.0  # the unknown output is left out of the confidence (and of the labels)
    method = build_method("open_self_training", num_classes=K, teacher=FixedLogits(logits),
                          pl_unknown_fraction=1 / 16)
    labels, weight = method.pseudo_labels(torch.zeros(1, 3, 4, 4))
    expected = torch.ones(4, 4, dtype=torch.long)
    expected[0, 0] = K
    assert torch.equal(labels[0], expected)
    torch.testing.assert_close(weight[0], torch.full((4, 4), 14 / 16))  # 14 of 16 pixels above 0.968


def test_open_self_training_declares_its_head_and_guards_labels(synthcity):
    assert METHODS.get("open_self_training").unknown_head and not METHODS.get("self_training").unknown_head
    with pytest.raises(TypeError, match="open_set"):
        build_method("self_training", num_classes=K, open_set=True)  # hidden: the declaration would disagree
    with pytest.raises(TypeError, match="open_set"):
        build_method("open_self_training", num_classes=K, open_set=False)  # fixed
    d = tiny_cfg_dict(synthcity, "self_training")
    d["method"]["pl_unknown_fraction"] = 0.05
    with pytest.raises(ConfigError, match="pl_unknown_fraction"):
        config_from_dict(d)
    with pytest.raises(ValueError, match="pl_unknown_fraction"):
        build_method("open_self_training", num_classes=K, pl_unknown_fraction=1.0)
    torch.manual_seed(0)
    student = Stub(unknown=True)
    method = build_method("open_self_training", model=student, num_classes=K, mic=True, adversarial=True,
                          entropy=True, disc_ndf=4)
    assert method.unknown_head and method.teacher.head.out_channels == K + 1
    tgt = {"image": torch.randn(2, 3, 64, 64)}
    bad = {"image": torch.randn(2, 3, 64, 64), "label": torch.full((2, 64, 64), K)}
    with pytest.raises(ValueError, match=f"unknown id {K}"):
        method.generator_step(student, bad, tgt, 0.5)
    src = {"image": torch.randn(2, 3, 64, 64), "label": torch.randint(0, K, (2, 64, 64))}
    losses, cache = method.generator_step(student, src, tgt, 0.5)
    assert {"seg_main", "mix_main", "mic_main", "adv_main", "ent_main"} <= set(losses)
    assert cache["tgt_main"].shape[1] == K  # ADVENT's terms see the K known outputs, as OSBP's
    assert set(method.discriminator_step(cache)) == {"d_main_src", "d_main_tgt"}
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in student.parameters())
    with pytest.raises(ValueError, match="channels"):  # a K-way model is refused
        method.generator_step(Stub(), src, tgt, 0.5)
