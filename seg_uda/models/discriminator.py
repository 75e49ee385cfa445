"""Domain discriminators: ADVENT's fully-convolutional one (Tsai et al. 2018 / Vu et al. 2019) on output maps, and
DANN's per-location domain classifier on features (Ganin & Lempitsky 2015)."""
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


class DomainClassifier(nn.Module):
    """Fully-convolutional per-location domain classifier:
    3x3 conv -> ReLU -> 3x3 conv -> ReLU -> 1x1 conv (1 logit)."""

    def __init__(self, in_channels: int, hidden: int = 256) -> None:
        super().__init__()
        if int(in_channels) < 1 or int(hidden) < 1:
            raise ValueError(f"DomainClassifier: in_channels and hidden must be >= 1, got {in_channels}, {hidden}")
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, hidden, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 1, kernel_size=1),
        )

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """Domain logits [N,1,h,w] for features [N,C,h,w] (source = 0, target = 1)."""
        return self.net(feat)
