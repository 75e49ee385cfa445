"""FDA (Yang & Soatto, CVPR 2020): the amplitude swap against a numpy reference, the robust entropy by hand, the
method's losses and normalization handling, and a 2-iteration training run."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from seg_uda.config import config_from_dict
from seg_uda.data.transforms import CAFFE_MEAN_BGR, IMAGENET_MEAN, IMAGENET_STD
from seg_uda.methods import METHODS, build_method
from seg_uda.methods.fda import FDA, fda_source_to_target, robust_entropy
from seg_uda.methods.losses import seg_loss

from conftest import tiny_cfg_dict


def numpy_fda(src: np.ndarray, tgt: np.ndarray, beta: float) -> np.ndarray:
    """FDA's FDA_source_to_target in float64 numpy: corner-indexed low band of the amplitude from `tgt`."""
    f_src, f_tgt = np.fft.fft2(src, axes=(-2, -1)), np.fft.fft2(tgt, axes=(-2, -1))
    amp, amp_tgt = np.abs(f_src), np.abs(f_tgt)
    h, w = src.shape[-2:]
    b = int(np.floor(min(h, w) * beta))
    for rows in (slice(0, b), slice(h - b, h)):
        for cols in (slice(0, b), slice(w - b, w)):
            amp[..., rows, cols] = amp_tgt[..., rows, cols]
    return np.real(np.fft.ifft2(amp * np.exp(1j * np.angle(f_src)), axes=(-2, -1)))


def _images(h: int = 12, w: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, h, w, generator=g, dtype=torch.float64), torch.rand(2, 3, h, w, generator=g,
                                                                                 dtype=torch.float64) * 0.5 + 0.4


def test_amplitude_swap_matches_numpy_reference() -> None:
    src, tgt = _images()
    for beta in (0.1, 0.25):  # b = 1 and b = 3 on 12 x 16
        out = fda_source_to_target(src, tgt, beta)
        assert out.dtype == src.dtype and out.shape == src.shape
        np.testing.assert_allclose(out.numpy(), numpy_fda(src.numpy(), tgt.numpy(), beta), atol=1e-6)
    assert not torch.allclose(fda_source_to_target(src, tgt, 0.25), src)


def test_low_band_takes_target_amplitude_and_keeps_source_phase() -> None:
    src, tgt = _images()
    h, w, b = 12, 16, 3  # beta 0.25
    f_src, f_tgt = torch.fft.fft2(src), torch.fft.fft2(tgt)
    f_out = torch.fft.fft2(fda_source_to_target(src, tgt, 0.25))
    rows, cols = torch.zeros(h, dtype=torch.bool), torch.zeros(w, dtype=torch.bool)
    rows[:b], rows[h - b:], cols[:b], cols[w - b:] = True, True, True, True
    band = rows[:, None] & cols[None, :]
    mirrored = torch.roll(torch.flip(band, (0, 1)), (1, 1), (0, 1))  # band at -k (the output is real)
    both, neither = band & mirrored, ~band & ~mirrored
    assert both.sum() > 1 and neither.sum() > 1
    torch.testing.assert_close(f_out.abs()[..., both], f_tgt.abs()[..., both])  # low band: target amplitude
    torch.testing.assert_close(f_out.angle()[..., both], f_src.angle()[..., both])  # ... with the source phase
    torch.testing.assert_close(f_out[..., neither], f_src[..., neither])  # high frequencies untouched
    # the DC bin is in the band: every channel of the output has the target's mean colour
    torch.testing.assert_close(fda_source_to_target(src, tgt, 0.25).mean((-2, -1)), tgt.mean((-2, -1)))


def test_beta_zero_leaves_the_image_unchanged() -> None:
    src, tgt = _images()
    assert torch.equal(fda_source_to_target(src, tgt, 0.0), src)
    assert torch.equal(fda_source_to_target(src, tgt, 0.08), src)  # floor(12 * 0.08) = 0: an empty band
    with pytest.raises(ValueError, match="one shape"):
        fda_source_to_target(src, tgt[..., :8], 0.1)


def test_robust_entropy_hand_computed() -> None:
    # one pixel with p = (0.8, 0.2), one with p = (0.5, 0.5); C = 2
    logits = torch.log(torch.tensor([[0.8, 0.5], [0.2, 0.5]])).view(1, 2, 1, 2)
    h1 = -(0.8 * math.log(0.8) + 0.2 * math.log(0.2)) / math.log(2)  # 0.7219281
    expected = ((h1 ** 2 + 1e-8) ** 2 + (1.0 + 1e-8) ** 2) / 2  # ((H/log C)^2 + 1e-8)^eta, eta = 2
    assert expected == pytest.approx(0.6358144, abs=1e-7)
    assert robust_entropy(logits).item() == pytest.approx(expected, rel=1e-6)
    assert robust_entropy(logits, eta=1.0).item() == pytest.approx((h1 ** 2 + 1.0 + 2e-8) / 2, rel=1e-6)
    confident = torch.tensor([20.0, -20.0]).view(1, 2, 1, 1)
    assert robust_entropy(confident).item() == pytest.approx(0.0, abs=1e-12)


def test_from_config_passes_the_normalization_in_the_tensor_channel_order() -> None:
    def cfg(norm: str):
        return config_from_dict({"name": "t", "data": {"source": {"type": "gta5", "root": "/x"}, "normalization": norm,
                                                      "target": {"type": "cityscapes", "root": "/x"}},
                                 "model": {"name": "deeplabv2", "encoder_name": "resnet18", "multi_level": False},
                                 "method": {"name": "fda", "beta": 0.05}})

    kw = METHODS.get("fda").from_config(cfg("imagenet"))
    assert kw["pixel_mean"] == pytest.approx(list(IMAGENET_MEAN))
    assert kw["pixel_std"] == pytest.approx(list(IMAGENET_STD))
    kw = METHODS.get("fda").from_config(cfg("caffe"))
    assert kw["pixel_mean"] == pytest.approx([v / 255 for v in CAFFE_MEAN_BGR])  # B, G, R: the tensors' order
    assert kw["beta"] == 0.05 and kw["num_classes"] == 19


def test_stylise_swaps_raw_pixels_and_renormalizes() -> None:
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    method = FDA(num_classes=3, beta=0.25, pixel_mean=mean, pixel_std=std)
    src, tgt = (x.float() for x in _images())
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    styled = method.stylise((src - m) / s, (tgt - m) / s)
    torch.testing.assert_close(styled, (fda_source_to_target(src, tgt, 0.25) - m) / s, atol=1e-5, rtol=1e-5)
    small = method.stylise((src - m) / s, ((tgt - m) / s)[:1, :, :6, :8])  # one smaller target: cycled, resized
    assert small.shape == src.shape and torch.isfinite(small).all()


class _Seg(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, 3, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> dict:
        return {"out": self.head(x)}


def test_losses_follow_the_paper() -> None:
    torch.manual_seed(0)
    model = _Seg()
    src = {"image": torch.randn(2, 3, 16, 16), "label": torch.randint(0, 3, (2, 16, 16))}
    tgt = {"image": torch.randn(2, 3, 16, 16)}
    losses, cache = build_method("fda", num_classes=3, beta=0.0, lambda_ent=0.5).generator_step(model, src, tgt, 0.3)
    assert set(losses) == {"seg_main", "ent_main"} and cache == {}
    with torch.no_grad():  # beta 0: plain source cross-entropy; entropy on the target's output-resolution logits
        assert losses["seg_main"].item() == pytest.approx(seg_loss(model(src["image"])["out"], src["label"]).item())
        assert losses["ent_main"].item() == pytest.approx(0.5 * robust_entropy(model(tgt["image"])["out"]).item())
    late = build_method("fda", num_classes=3, entropy_start=0.5)
    assert late.generator_step(model, src, tgt, 0.3)[0]["ent_main"].item() == 0.0
    styled, _ = build_method("fda", num_classes=3, beta=0.25).generator_step(model, src, tgt, 0.3)
    assert styled["seg_main"].item() != pytest.approx(losses["seg_main"].item())
    with pytest.raises(ValueError, match="beta"):
        build_method("fda", num_classes=3, beta=0.5)


def test_two_iteration_training_run(synthcity: Path, tmp_path: Path) -> None:
    from seg_uda.engine.trainer import Trainer

    torch.set_num_threads(1)
    d = tiny_cfg_dict(synthcity, "fda", device="cpu", data={"val": None}, schedule={"max_iters": 2})
    d["method"]["beta"] = 0.05  # b = floor(48 * 0.05) = 2 on the 64 x 48 source
    del d["data"]["val_size"]
    cfg = config_from_dict(d)
    trainer = Trainer(cfg, work_dir=tmp_path, progress=False)
    assert isinstance(trainer.method, FDA) and trainer.d_optimizer is None
    assert trainer.method.pixel_mean == pytest.approx(list(IMAGENET_MEAN))
    trainer.train()
    recs = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in recs if r["kind"] == "train"]
    assert [r["iter"] for r in train] == [1, 2]
    for r in train:
        assert {"seg_main", "seg_aux", "ent_main"} <= set(r)
        assert all(math.isfinite(r[k]) for k in ("seg_main", "seg_aux", "ent_main"))
    assert (tmp_path / "checkpoints" / "last.pth").is_file()
