"""DeepLab-v3+ (SMP) with the seg_uda output interface; logits at decoder resolution (stride 4), not upsampled."""
from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Sequence

import segmentation_models_pytorch as smp
import torch
from torch import nn

from . import MODELS
from .batchnorm import apply_bn_policy
from .encoders import download_weights_arg, resolve_encoder_name
from .pretrained import LoadReport, WeightsSpec, imagenet_download_guard, load_encoder_weights


@MODELS.register("deeplabv3plus")
class DeepLabV3Plus(nn.Module):
    """SMP DeepLabV3+ returning ``{"out", "feat"}``: ``out`` are the logits of SMP's head conv *before* its
    4x upsampling (i.e. stride 4), ``feat`` the deepest encoder feature map. No auxiliary output.

    With the default ``bn_policy="frozen"`` every BN (incl. the ASPP image-pooling one) uses running stats,
    so batch-1 training works; note that freezing randomly initialised decoder BNs makes them identities.
    """

    def __init__(
        self,
        num_classes: int = 19,
        encoder_name: str = "resnet101",
        encoder_weights: WeightsSpec = None,
        output_stride: int = 16,
        decoder_channels: int = 256,
        decoder_atrous_rates: Sequence[int] = (12, 24, 36),
        decoder_aspp_dropout: float = 0.5,
        bn_policy: str = "frozen",
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.output_stride = output_stride
        name = resolve_encoder_name(encoder_name)
        dl = download_weights_arg(name, encoder_weights)
        kwargs = dict(encoder_name=name, encoder_output_stride=output_stride, decoder_channels=decoder_channels,
                      decoder_atrous_rates=tuple(decoder_atrous_rates), decoder_aspp_dropout=decoder_aspp_dropout,
                      in_channels=in_channels, classes=num_classes, upsampling=1)
        if dl is not None:
            with imagenet_download_guard(encoder_name, encoder_weights):
                self.net = smp.DeepLabV3Plus(encoder_weights=dl, **kwargs)
        else:
            self.net = smp.DeepLabV3Plus(encoder_weights=None, **kwargs)
        self.pretrained_report: Optional[LoadReport] = load_encoder_weights(
            self.net.encoder, encoder_name, encoder_weights if dl is None else None)
        self.feat_channels: int = list(self.net.encoder.out_channels)[-1]
        self.out_stride: int = 4  # the decoder fuses at the stride-4 encoder stage
        apply_bn_policy(self, bn_policy)

    @property
    def encoder(self) -> nn.Module:
        return self.net.encoder

    def forward(self, x: torch.Tensor, grl_lambda: Optional[float] = None) -> Dict[str, torch.Tensor]:
        """``grl_lambda`` (open-set OSBP): also return ``out_rev``, the decoder + head applied to the encoder
        features through a gradient-reversal layer (head gradients normal, encoder gradients times -lambda)."""
        features = self.forward_features(x)
        result = self.forward_head(features)
        if grl_lambda is not None:
            from .grl import grad_reverse

            result["out_rev"] = self.forward_head([grad_reverse(f, grl_lambda) for f in features])["out"]
        return result

    def forward_features(self, x: torch.Tensor) -> List[torch.Tensor]:
        """The encoder's feature pyramid (what the decoder reads)."""
        self.net.check_input_shape(x)
        return list(self.net.encoder(x))

    def forward_head(self, features: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Decoder + segmentation head on :meth:`forward_features` output: ``{"out", "feat"}``."""
        logits = self.net.segmentation_head(self.net.decoder(features))
        return {"out": logits, "feat": features[-1]}

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        """Encoder parameters (smaller LR or frozen). Filter on ``requires_grad`` for the optimizer."""
        return self.net.encoder.parameters()

    def head_parameters(self) -> Iterator[nn.Parameter]:
        """Decoder (ASPP + fusion) and segmentation-head parameters."""
        yield from self.net.decoder.parameters()
        yield from self.net.segmentation_head.parameters()
