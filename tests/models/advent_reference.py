"""ADVENT's ``ResNetMulti`` layout (advent/model/deeplabv2.py), rewritten for tests: same module names, shapes and
strides, so its state dict has the key layout of the released GTA2Cityscapes_* / SYNTHIA models."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import nn

DILATIONS = (6, 12, 18, 24)


class Bottleneck(nn.Module):
    """Caffe bottleneck: the stride sits on the first 1x1 conv; the 3x3 conv is dilated with padding = dilation."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ClassifierModule(nn.Module):
    """Sum of 3x3 convs with padding = dilation (6, 12, 18, 24), with bias."""

    def __init__(self, inplanes: int, num_classes: int) -> None:
        super().__init__()
        self.conv2d_list = nn.ModuleList(nn.Conv2d(inplanes, num_classes, 3, padding=d, dilation=d, bias=True)
                                         for d in DILATIONS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(conv(x) for conv in self.conv2d_list)


class ResNetMulti(nn.Module):
    """ResNet-101 at output stride 8 (layer3 dilation 2, layer4 dilation 4), ceil-mode max-pool; ``layer5`` = aux
    classifier on layer3, ``layer6`` = main classifier on layer4. ``forward`` -> (aux, main) logits."""

    def __init__(self, num_classes: int = 19, layers: Sequence[int] = (3, 4, 23, 3)) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1, ceil_mode=True)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], dilation=2)
        self.layer4 = self._make_layer(512, layers[3], dilation=4)
        self.layer5 = ClassifierModule(1024, num_classes)
        self.layer6 = ClassifierModule(2048, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * 4 or dilation in (2, 4):
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes * 4))
        layers = [Bottleneck(self.inplanes, planes, stride, dilation, downsample)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes, dilation=dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        aux = self.layer5(x)
        return aux, self.layer6(self.layer4(x))


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Weights and BatchNorm statistics drawn at random (moderate scales), as a stand-in for trained weights."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
    return model
