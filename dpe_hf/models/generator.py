"""The DPE generator: the paper's Global U-Net (Table 1 of the supplement; docs/method.md).

Sizes: at 512x512 every layer is exactly the paper's. At other sizes the input is padded to a
multiple of 16 (mirror, cropped back at the end) and the map entering the global path's fully
connected layer (g3, an 8x8 valid conv) is average-pooled to 8x8, so crops of any size train
and any image runs.

The global feature (B,128,1,1) summarises the whole image. Rule, the same in training and
inference: it is computed from the image the network is given; full-resolution inference
(`dpe_hf.inference`) gives it the copy with long side 512 and reuses that feature for tiles.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dpe_hf.models.blocks import (
    SELU,
    ConvSeluBN,
    IndividualBatchNorm2d,
    batch_norm,
    conv,
    init_variance_scaling,
    pad_to,
    padded_size,
)
from dpe_hf.models.hub_mixin import DPEHubMixin
from dpe_hf.ops.checks import check_levels
from dpe_hf.resources import model_card_template

GLOBAL_GRID = 8  # g3 is an 8x8 "fully connected" conv over the 8x8 map of a 512 input
MULTIPLE = 16  # four stride-2 convs between the input and e5
MIN_SIZE_WITH_GLOBAL = 80  # smallest padded side for which g1/g2's mirror padding is defined
MIN_SIZE_LOCAL = 32


class DPEGenerator(
    nn.Module,
    DPEHubMixin,
    library_name="dpe_hf",
    tags=["image-enhancement", "photo-enhancement", "deep-photo-enhancer", "image-to-image"],
    license="mit",
    pipeline_tag="image-to-image",
    repo_url="https://github.com/dpe-hf/dpe_hf",
    paper_url="https://openaccess.thecvf.com/content_cvpr_2018/html/Chen_Deep_Photo_Enhancer_CVPR_2018_paper.html",
    model_card_template=model_card_template("generator"),
):
    """Global U-Net enhancer: (B,3,H,W) in [0,1] -> (B,3,H,W), the input plus a learned residual.

    Args:
        width: channel multiplier (1.0 = the paper's 16/32/64/128 channels).
        individual_bn: two BN sets (0: real inputs, 1: generated inputs) for the 2-way GAN.
        selu: "released" (the authors' constants) or "pytorch".
        init_scale: variance-scaling factor of the conv init (1e-3 as released: starts near
            the identity); None for PyTorch's default init.
        bn_momentum: BatchNorm running-statistics momentum.
        levels: not part of the network: the weight of per-channel auto-levels that the
            inference core mixes into this model's outputs by default (`Enhancer(levels=)`;
            0: the network alone), saved in config.json like the rest, as a VAE's
            ``scaling_factor`` is: a setting chosen by cross-validating the model's recipe.
    The output is not clipped, so gradients flow; clip to [0,1] when you use it.
    """

    def __init__(self, width: float = 1.0, individual_bn: bool = False, selu: str = "released",
                 init_scale: float | None = 1e-3, bn_momentum: float = 0.1, levels: float = 0.0):
        super().__init__()
        self.levels = check_levels(levels)
        self.width = width
        self.individual_bn = individual_bn
        c16, c32, c64, c128 = (max(1, round(c * width)) for c in (16, 32, 64, 128))
        block = dict(selu=selu, individual_bn=individual_bn, bn_momentum=bn_momentum)

        self.e1 = ConvSeluBN(3, c16, 3, 1, **block)
        self.e2 = ConvSeluBN(c16, c32, 5, 2, **block)
        self.e3 = ConvSeluBN(c32, c64, 5, 2, **block)
        self.e4 = ConvSeluBN(c64, c128, 5, 2, **block)
        self.e5 = ConvSeluBN(c128, c128, 5, 2, **block)

        self.g1 = ConvSeluBN(c128, c128, 5, 2, **block)
        self.g2 = ConvSeluBN(c128, c128, 5, 2, **block)
        self.g3 = nn.Sequential(nn.Conv2d(c128, c128, GLOBAL_GRID), SELU(selu))
        self.g4 = nn.Conv2d(c128, c128, 1)

        self.d0 = conv(c128, c128, 3)
        self.d1 = ConvSeluBN(2 * c128, c128, 1, 1, **block)
        self.up2 = conv(c128, c128, 3)
        self.up3 = conv(2 * c128, c128, 3)
        self.up4 = conv(c128 + c64, c64, 3)
        self.up5 = conv(c64 + c32, c32, 3)
        self.post2 = nn.Sequential(SELU(selu), batch_norm(2 * c128, individual_bn, bn_momentum))
        self.post3 = nn.Sequential(SELU(selu), batch_norm(c128 + c64, individual_bn, bn_momentum))
        self.post4 = nn.Sequential(SELU(selu), batch_norm(c64 + c32, individual_bn, bn_momentum))
        self.post5 = nn.Sequential(SELU(selu), batch_norm(c32 + c16, individual_bn, bn_momentum))
        self.d6 = ConvSeluBN(c32 + c16, c16, 3, 1, **block)
        self.out = conv(c16, 3, 3)

        init_variance_scaling(self, init_scale)

    # -- the two paths -------------------------------------------------------------------
    def _encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        e1 = self.e1(x)
        e2 = self.e2(e1)
        e3 = self.e3(e2)
        e4 = self.e4(e3)
        return [e1, e2, e3, e4, self.e5(e4)]

    def _global_from_e5(self, e5: torch.Tensor) -> torch.Tensor:
        g = self.g2(self.g1(e5))
        if g.shape[-2:] != (GLOBAL_GRID, GLOBAL_GRID):
            g = F.adaptive_avg_pool2d(g, GLOBAL_GRID)
        return self.g4(self.g3(g))

    def encode_global(self, x: torch.Tensor, bn_set: int = 0) -> torch.Tensor:
        """The global feature (B,128*width,1,1) of `x` (B,3,H,W) in [0,1], any H, W."""
        self.select_bn(bn_set)
        h, w = x.shape[-2:]
        x = pad_to(x, padded_size(h, MULTIPLE, MIN_SIZE_WITH_GLOBAL), padded_size(w, MULTIPLE, MIN_SIZE_WITH_GLOBAL))
        return self._global_from_e5(self._encode(x)[-1])

    def forward(self, x: torch.Tensor, global_feature: torch.Tensor | None = None, bn_set: int = 0) -> torch.Tensor:
        """Enhance `x` (B,3,H,W) in [0,1]; output has the input's shape (not clipped).

        `global_feature` (from `encode_global`) replaces the one computed from `x`: use it to run
        tiles of a large image with the look of the whole. `bn_set` picks the BN set when the
        model has individual BN (0: real inputs, 1: generated inputs).
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B,3,H,W) tensor, got shape {tuple(x.shape)}")
        self.select_bn(bn_set)
        h, w = x.shape[-2:]
        minimum = MIN_SIZE_LOCAL if global_feature is not None else MIN_SIZE_WITH_GLOBAL
        xp = pad_to(x, padded_size(h, MULTIPLE, minimum), padded_size(w, MULTIPLE, minimum))
        e1, e2, e3, e4, e5 = self._encode(xp)
        g = self._global_from_e5(e5) if global_feature is None else global_feature.to(e5.dtype)

        d = torch.cat([self.d0(e5), g.expand(-1, -1, *e5.shape[-2:])], dim=1)
        d = self.d1(d)
        for up, post, skip in ((self.up2, self.post2, e4), (self.up3, self.post3, e3),
                               (self.up4, self.post4, e2), (self.up5, self.post5, e1)):
            d = F.interpolate(up(d), scale_factor=2, mode="nearest")
            d = post(torch.cat([d, skip], dim=1))
        residual = self.out(self.d6(d))
        return (xp + residual)[..., :h, :w]

    # -- individual BN -------------------------------------------------------------------
    def select_bn(self, bn_set: int) -> None:
        if not self.individual_bn:
            if bn_set != 0:
                raise ValueError("bn_set must be 0 for a generator without individual BN")
            return
        for m in self.modules():
            if isinstance(m, IndividualBatchNorm2d):
                m.active = bn_set

    def load_single_bn_weights(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load a single-BN generator's weights into this individual-BN one: convs as they are,
        each BN's parameters and statistics copied to both sets (paper: 2-way GAN initialised
        from the supervised model)."""
        if not self.individual_bn:
            self.load_state_dict(state_dict)
            return
        own = self.state_dict()
        mapped = {}
        for key, value in state_dict.items():
            if key in own:
                mapped[key] = value
                continue
            prefix, _, leaf = key.rpartition(".")
            copies = [f"{prefix}.bns.{i}.{leaf}" for i in range(2)]
            if not all(c in own for c in copies):
                raise KeyError(f"layer {key} has no counterpart in an individual-BN generator")
            mapped.update({c: value.clone() for c in copies})
        self.load_state_dict(mapped)
