"""A tiny segmenter and batches shared by the method tests in tests/methods/ (test_methods, test_advent, test_dann)."""
from __future__ import annotations

import inspect

import torch
from torch import nn

from seg_uda.methods import METHODS, UDAMethod, build_method

K = 3  # classes
FEAT = 4  # stub feature channels
H = W = 32  # FCDiscriminator's five stride-2 convs need >= 32 px


class StubSegmenter(nn.Module):
    """Two convs following the segmenter interface: {"out", "feat"[, "aux"]} at half resolution."""

    def __init__(self, multi_level: bool = False) -> None:
        super().__init__()
        self.feat_channels = FEAT
        self.body = nn.Sequential(nn.Conv2d(3, FEAT, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Conv2d(FEAT, K, 1)
        self.aux_head = nn.Conv2d(FEAT, K, 1) if multi_level else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feat = self.body(x)
        out = {"out": self.head(feat), "feat": feat}
        if self.aux_head is not None:
            out["aux"] = self.aux_head(feat)
        return out


def stub_batch(seed: int, labelled: bool = True) -> dict[str, torch.Tensor]:
    """Two random H x W images (``seed``), with labels in 0..K-1 and an ignored top band when ``labelled``."""
    g = torch.Generator().manual_seed(seed)
    batch = {"image": torch.randn(2, 3, H, W, generator=g)}
    if labelled:
        label = torch.randint(0, K, (2, H, W), generator=g)
        label[:, :4] = 255
        batch["label"] = label
    return batch


def build_small(name: str, model: nn.Module, multi_level: bool = False, **kw) -> UDAMethod:
    """The registered method ``name`` for K classes, with its discriminators and DANN's classifier made tiny."""
    if "disc_ndf" in inspect.signature(METHODS.get(name)).parameters:
        kw.setdefault("disc_ndf", 4)
    if name == "dann":
        kw.setdefault("classifier_hidden", 8)
    return build_method(name, model=model, num_classes=K, multi_level=multi_level, **kw)
