"""Building blocks shared by the generator and the critic.

The paper's block is conv -> SELU -> BatchNorm, with mirror (reflect) padding for kernels
larger than one. Individual batch normalisation (iBN) keeps several sets of BN parameters and
statistics over shared convolutions; the caller picks the set per forward call.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# SELU constants of the authors' released TensorFlow code and of PyTorch (Klambauer et al.).
SELU_CONSTANTS = {
    "released": (1.0198755, 1.0026539),
    "pytorch": (1.6732632423543772, 1.0507009873554805),
}


class SELU(nn.Module):
    """SELU with configurable constants: scale * (x if x > 0 else alpha * (exp(x) - 1))."""

    def __init__(self, variant: str = "released"):
        super().__init__()
        if variant not in SELU_CONSTANTS:
            raise ValueError(f"unknown SELU variant {variant!r}; choose one of {sorted(SELU_CONSTANTS)}")
        self.alpha, self.scale = SELU_CONSTANTS[variant]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.where(x > 0, x, self.alpha * torch.expm1(x.clamp(max=0)))


def conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Conv2d:
    """A conv with mirror padding that keeps the size at stride 1 and halves it at stride 2."""
    padding = kernel_size // 2 if kernel_size > 1 else 0
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=padding, padding_mode="reflect")


class IndividualBatchNorm2d(nn.Module):
    """BatchNorm with `num_sets` independent parameter/statistic sets over the same features.

    The 2-way GAN feeds each generator real photos and generated ones, whose statistics differ;
    sharing one BN would mix them (paper, Sec. 5). `active` selects the set for the next call.
    """

    def __init__(self, num_features: int, num_sets: int = 2, momentum: float = 0.1):
        super().__init__()
        self.bns = nn.ModuleList(nn.BatchNorm2d(num_features, momentum=momentum) for _ in range(num_sets))
        self.active = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bns[self.active](x)


def batch_norm(num_features: int, individual: bool, momentum: float) -> nn.Module:
    if individual:
        return IndividualBatchNorm2d(num_features, momentum=momentum)
    return nn.BatchNorm2d(num_features, momentum=momentum)


class ConvSeluBN(nn.Module):
    """The paper's block: conv -> SELU -> BN."""

    def __init__(self, in_ch: int, out_ch: int, k: int, stride: int, *, selu: str, individual_bn: bool,
                 bn_momentum: float):
        super().__init__()
        self.conv = conv(in_ch, out_ch, k, stride)
        self.act = SELU(selu)
        self.bn = batch_norm(out_ch, individual_bn, bn_momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.act(self.conv(x)))


def pad_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pad (B,C,H,W) at the bottom/right to (height, width): mirror where the image is large
    enough for it, edge replication otherwise (a 1-pixel image has nothing to mirror)."""
    pad_h, pad_w = height - x.shape[-2], width - x.shape[-1]
    if pad_h == 0 and pad_w == 0:
        return x
    mode = "reflect" if pad_h < x.shape[-2] and pad_w < x.shape[-1] else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def padded_size(size: int, multiple: int, minimum: int) -> int:
    return max(minimum, math.ceil(size / multiple) * multiple)


def init_variance_scaling(module: nn.Module, scale: float | None) -> None:
    """Initialise conv weights with variance `scale / fan_avg` and zero biases (the released
    code's variance scaling; with scale 1e-3 the residual generator starts near the identity).
    `scale=None` keeps PyTorch's default initialisation."""
    if scale is None:
        return
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
            std = math.sqrt(scale / ((fan_in + fan_out) / 2))
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
