"""Model construction shared by the training modes."""

from __future__ import annotations

from dpe_hf.models.generator import DPEGenerator
from dpe_hf.training.config import TrainConfig


def build_generator(config: TrainConfig, *, individual_bn: bool = False) -> DPEGenerator:
    """A generator from `config.model`; starts from `model.init_from` weights when given (its BN
    parameters copied to both sets when this one has individual BN)."""
    m = config.model
    generator = DPEGenerator(width=m.width, individual_bn=individual_bn, selu=m.selu, init_scale=m.init_scale)
    if m.init_from:
        from dpe_hf.hub import load_generator

        source = load_generator(m.init_from)
        generator.load_single_bn_weights(source.state_dict())
    return generator
