"""The DPE critic (WGAN discriminator); docs/method.md.

conv -> LeakyReLU(0.2) -> InstanceNorm(affine) blocks: 3x3 s1 to 16 channels, then 5x5 s2 to
32, 64, 128, 128, 128 (512 -> 16x16), then a 16x16 valid conv to one score per image. No
BatchNorm: the gradient penalty is computed per sample. At sizes other than 512 the 16x16 map
is obtained by average pooling, so the critic takes crops of any size.

`norm="none"` drops the InstanceNorm layers. Why offer it: conv is linear, LeakyReLU is
positively homogeneous and InstanceNorm removes each channel's scale, so the paper's critic
scores k*x like x for any gain k > 0 except through the first conv's biases (exactly, with
zero biases): it is nearly blind to a global brightness/contrast gain, which is much of what
tells one set of photos from another. Without the norm the critic sees it (with zero biases
it is positively homogeneous: D(k x) = k D(x)); the gradient penalty alone bounds its slope.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dpe_hf.models.blocks import conv, init_variance_scaling, pad_to, padded_size
from dpe_hf.models.hub_mixin import DPEHubMixin
from dpe_hf.resources import model_card_template

FINAL_GRID = 16
MULTIPLE = 32  # five stride-2 convs
MIN_SIZE = 64  # the last stride-2 conv needs a map larger than its mirror padding
NORMS = ("instance", "none")  # the paper's; none (sees a global gain, see the module doc)


class DPEDiscriminator(
    nn.Module,
    DPEHubMixin,
    library_name="dpe_hf",
    tags=["deep-photo-enhancer", "wgan-critic"],
    license="mit",
    model_card_template=model_card_template("discriminator"),
):
    """WGAN critic: (B,3,H,W) in [0,1] -> (B,) scores (higher = more like the target set)."""

    def __init__(self, width: float = 1.0, init_scale: float | None = None, norm: str = "instance"):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"DPEDiscriminator: norm must be one of {NORMS}, got {norm!r}")
        channels = [max(1, round(c * width)) for c in (16, 32, 64, 128, 128, 128)]
        layers: list[nn.Module] = []
        in_ch = 3
        for i, out_ch in enumerate(channels):
            layers += [conv(in_ch, out_ch, 3 if i == 0 else 5, 1 if i == 0 else 2), nn.LeakyReLU(0.2)]
            if norm == "instance":
                layers.append(nn.InstanceNorm2d(out_ch, affine=True))
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self.score = nn.Conv2d(in_ch, 1, FINAL_GRID)
        init_variance_scaling(self, init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B,3,H,W) tensor, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        x = pad_to(x, padded_size(h, MULTIPLE, MIN_SIZE), padded_size(w, MULTIPLE, MIN_SIZE))
        f = self.features(x)
        if f.shape[-2:] != (FINAL_GRID, FINAL_GRID):
            f = F.adaptive_avg_pool2d(f, FINAL_GRID)
        return self.score(f).mean(dim=(1, 2, 3))
