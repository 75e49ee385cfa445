"""ADVENT (seg_uda/methods/advent.py): D labels and inputs, the paper's weights, the MinEnt / AdvEnt /
AdvEnt+MinEnt presets, and the class-ratio prior (Sec. 3.3), on a tiny stub segmenter."""
from __future__ import annotations

import inspect
import math

import pytest
import torch
from torch import nn

from method_stubs import FEAT, H, K, W, StubSegmenter, build_small, stub_batch
from seg_uda.methods import METHODS, AdvEnt, build_method
from seg_uda.methods.losses import bce_with_logits, class_prior_loss, upsample_logits
from seg_uda.registry import Preset


def test_advent_labels_and_inputs_follow_advent() -> None:
    """Generator: target maps vs the *source* label (0); D: source maps -> 0, target maps -> 1, each halved."""
    torch.manual_seed(0)
    model = StubSegmenter()
    method = build_small("advent", model, lambda_adv_main=1.0)
    disc = method.discriminators["main"]
    target = stub_batch(1, labelled=False)
    losses, cache = method.generator_step(model, stub_batch(0), target, progress=0.0)
    # The D input is the self-information map of the softmax of target logits upsampled to the image size.
    logits = torch.nn.functional.interpolate(model(target["image"])["out"], size=(H, W), mode="bilinear",
                                             align_corners=True)
    prob = logits.softmax(1)
    imap = -prob * torch.log2(prob + 1e-30) / math.log2(K)
    assert cache["tgt_main"].shape == (2, K, H, W)
    assert torch.allclose(cache["tgt_main"], imap, atol=1e-6)
    assert losses["adv_main"].item() == pytest.approx(bce_with_logits(disc(imap), 0.0).item(), rel=1e-5)
    d = method.discriminator_step(cache)
    assert d["d_main_src"].item() == pytest.approx(0.5 * bce_with_logits(disc(cache["src_main"]), 0.0).item(), rel=1e-5)
    assert d["d_main_tgt"].item() == pytest.approx(0.5 * bce_with_logits(disc(imap), 1.0).item(), rel=1e-5)


def test_paper_default_weights() -> None:
    m = build_method("advent_minent", num_classes=K, multi_level=True)
    assert (m.lambda_seg_main, m.lambda_seg_aux) == (1.0, 0.1)
    assert m.lambda_adv == {"main": 1e-3, "aux": 2e-4}
    assert m.lambda_ent == {"main": 1e-3, "aux": 2e-4}
    assert m.discriminators["main"].layers[0].out_channels == 64


def test_weights_scale_reported_losses() -> None:
    torch.manual_seed(0)
    model = StubSegmenter()
    src, tgt = stub_batch(0), stub_batch(1, labelled=False)
    a, _ = build_small("minent", model, lambda_ent_main=1.0, lambda_seg_main=1.0).generator_step(model, src, tgt, 0.0)
    b, _ = build_small("minent", model, lambda_ent_main=0.5, lambda_seg_main=2.0).generator_step(model, src, tgt, 0.0)
    assert b["ent_main"].item() == pytest.approx(0.5 * a["ent_main"].item(), rel=1e-6)
    assert b["seg_main"].item() == pytest.approx(2.0 * a["seg_main"].item(), rel=1e-6)


def test_entropy_presets_are_one_class_with_todays_defaults() -> None:
    built = {n: build_method(n, num_classes=K) for n in ("minent", "advent", "advent_minent")}
    assert {type(m) for m in built.values()} == {AdvEnt}
    flags = {n: (m.adversarial, m.entropy, m.has_discriminators) for n, m in built.items()}
    assert flags == {"minent": (False, True, False), "advent": (True, False, True), "advent_minent": (True, True, True)}
    for m in built.values():
        assert (m.lambda_adv, m.lambda_ent) == ({"main": 1e-3, "aux": 2e-4}, {"main": 1e-3, "aux": 2e-4})
    assert isinstance(METHODS.get("minent"), Preset)
    assert "disc_ndf" not in inspect.signature(METHODS.get("minent")).parameters  # hidden: MinEnt has no D
    assert "lambda_ent_main" not in inspect.signature(METHODS.get("advent")).parameters
    with pytest.raises(TypeError, match="adversarial"):  # a preset's fixed flags cannot be overridden
        build_method("minent", num_classes=K, adversarial=True)


# ------------------------------------------------------------------ ADVENT's class-ratio prior (Sec. 3.3)
@pytest.mark.parametrize("name", ["minent", "advent", "advent_minent"])
def test_class_prior_term_is_weighted_per_level_and_off_by_default(name: str) -> None:
    torch.manual_seed(0)
    model = StubSegmenter(multi_level=True)
    src, tgt = stub_batch(0), stub_batch(1, labelled=False)
    plain, _ = build_small(name, model, multi_level=True).generator_step(model, src, tgt, 0.0)
    assert not any(k.startswith("cp_") for k in plain)
    prior = [2.0, 1.0, 1.0]  # normalised by the method: [0.5, 0.25, 0.25]
    method = build_small(name, model, multi_level=True, lambda_cp_main=0.3, lambda_cp_aux=0.07, cp_mu=0.8,
                    class_prior=prior)
    losses, _ = method.generator_step(model, src, tgt, 0.0)
    out = model(tgt["image"])
    for level, key, weight in (("main", "out", 0.3), ("aux", "aux", 0.07)):
        prob = torch.softmax(upsample_logits(out[key], (H, W)).float(), dim=1)
        expected = weight * class_prior_loss(prob, torch.tensor([0.5, 0.25, 0.25]), 0.8)
        assert losses[f"cp_{level}"].item() == pytest.approx(expected.item(), rel=1e-6)
        assert losses[f"cp_{level}"].requires_grad
    only_main = build_small(name, model, multi_level=True, lambda_cp_main=0.3, class_prior=prior)
    assert [k for k in only_main.generator_step(model, src, tgt, 0.0)[0] if k.startswith("cp_")] == ["cp_main"]


def test_class_prior_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="needs class_prior"):
        build_method("minent", num_classes=K, lambda_cp_main=0.1)
    with pytest.raises(ValueError, match="class_prior must be 3 non-negative numbers"):
        build_method("minent", num_classes=K, lambda_cp_main=0.1, class_prior=[0.5, 0.5])
    with pytest.raises(ValueError, match="class_prior must be 3 non-negative numbers"):
        build_method("minent", num_classes=K, lambda_cp_main=0.1, class_prior=[1.0, -0.5, 0.5])
    with pytest.raises(ValueError, match="cp_mu in"):
        build_method("advent", num_classes=K, lambda_cp_main=0.1, cp_mu=1.5, class_prior=[1, 1, 1])
    factory = METHODS.get("minent")
    assert factory.wants_source_prior({"lambda_cp_aux": 0.1})
    assert not factory.wants_source_prior({"lambda_cp_main": 0.1, "class_prior": [1, 1, 1]})
    assert not factory.wants_source_prior({}) and not METHODS.get("dann").wants_source_prior({"lambda_cp_main": 1})


def test_class_prior_from_a_config_is_the_source_label_histogram(synthcity) -> None:
    from conftest import tiny_cfg_dict

    from seg_uda.builders import build_dataset, build_method as build_from_config
    from seg_uda.config import config_from_dict

    spec = tiny_cfg_dict(synthcity, "minent")
    spec["method"]["lambda_cp_main"] = 0.01
    cfg = config_from_dict(spec)
    method = build_from_config(cfg)
    # hand count: every train id of every source label file, through the dataset's own id mapping
    source = build_dataset(cfg, "source")
    counts = torch.zeros(19, dtype=torch.float64)
    for i in range(len(source)):
        ids = torch.as_tensor(source.load_train_ids(i)).long().flatten()
        counts += torch.bincount(ids[ids < 19], minlength=19).double()
    assert torch.allclose(method.class_prior.double(), counts / counts.sum(), atol=1e-7)
    assert method.lambda_cp == {"main": 0.01}


def test_minent_at_weight_zero_is_a_statistics_only_control() -> None:
    """The control of the BatchNorm experiment (docs/synthcity_protocol.md): under ADVENT's BatchNorm policy,
    MinEnt with both weights 0 gives exactly source-only's gradients, while its target forward still moves the
    running statistics towards the target images."""
    from seg_uda.models.batchnorm import apply_bn_policy

    def model_with_bn() -> StubSegmenter:
        torch.manual_seed(0)
        m = StubSegmenter(multi_level=True)
        m.body = nn.Sequential(m.body[0], nn.BatchNorm2d(FEAT), nn.ReLU())
        return apply_bn_policy(m, "frozen_affine").train()

    src, tgt = stub_batch(0), stub_batch(1, labelled=False)
    tgt["image"] = 3.0 * tgt["image"] + 2.0  # other statistics than the source's
    grads, stats = [], []
    for name, kw in (("source_only", {}), ("minent", {"lambda_ent_main": 0.0, "lambda_ent_aux": 0.0})):
        model = model_with_bn()
        method = build_small(name, model, multi_level=True, **kw)
        losses, _ = method.generator_step(model, src, tgt if name == "minent" else None, 0.0)
        sum(losses.values()).backward()
        grads.append([p.grad.clone() for p in model.parameters() if p.requires_grad])
        stats.append(model.body[1].running_mean.clone())
    assert all(torch.equal(a, b) for a, b in zip(*grads))  # bit for bit: the zero-weighted term adds exactly 0
    assert not torch.equal(stats[0], stats[1])  # ... but the target forward moved the running statistics
