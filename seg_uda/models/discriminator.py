"""ADVENT's fully-convolutional domain discriminator (Tsai et al. 2018 / Vu et al. 2019)."""
from __future__ import annotations

import torch
from torch import nn


class FCDiscriminator(nn.Module):
    """Five 4x4 stride-2 convs (padding 1): in -> ndf -> 2ndf -> 4ndf -> 8ndf -> 1, LeakyReLU after the first four.

    Output is a per-patch domain logit map of size ~input/32 (each conv maps h -> floor(h/2)).
    """

    def __init__(self, in_channels: int, ndf: int = 64, negative_slope: float = 0.2) -> None:
        super().__init__()
        if in_channels < 1 or ndf < 1:
            raise ValueError(f"FCDiscriminator needs in_channels >= 1 and ndf >= 1, got {in_channels}, {ndf}")
        self.in_channels = in_channels
        chans = [in_channels, ndf, ndf * 2, ndf * 4, ndf * 8]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, kernel_size=4, stride=2, padding=1),
                       nn.LeakyReLU(negative_slope, inplace=True)]
        layers.append(nn.Conv2d(chans[-1], 1, kernel_size=4, stride=2, padding=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"FCDiscriminator expects [N,{self.in_channels},H,W] input, got {tuple(x.shape)}")
        return self.layers(x)
