"""Losses of the Deep Photo Enhancer (CVPR 2018) and of its GAN baselines.

Conventions used throughout this module:

* ``d_real`` / ``d_fake`` are raw critic (discriminator) outputs of any shape whose first
  dimension is the batch, e.g. ``(B,)``, ``(B, 1)`` or a patch map ``(B, 1, H, W)``. They are
  logits / scores, never probabilities. Every loss reduces them with a mean over *all*
  elements and returns a 0-dim tensor.
* Every ``*_critic_loss`` is the quantity the critic **minimises**; every
  ``*_generator_loss`` is the quantity the generator **minimises**. The caller adds the
  other terms (gradient penalty times lambda, identity, cycle, ...).
* The critic losses do not detach anything: pass ``fake.detach()`` through the critic when
  you only want to update the critic.

The A-WGAN penalty (paper and the authors' TensorFlow code) is one-sided and not squared:
``P = E_z[max(0, ||grad_z D(z)||_2 - 1)]`` with ``z`` uniformly interpolated between a real
and a fake sample. :func:`gradient_penalty` computes it (and, with ``two_sided=True``, the
standard WGAN-GP penalty ``E_z[(||grad_z D(z)||_2 - 1)^2]``); the adaptive weight lives in
:mod:`dpe_hf.awgan`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ADVERSARIAL_LOSSES",
    "cycle_loss",
    "gradient_penalty",
    "identity_loss",
    "lsgan_critic_loss",
    "lsgan_generator_loss",
    "supervised_loss",
    "vanilla_critic_loss",
    "vanilla_generator_loss",
    "wgan_critic_loss",
    "wgan_generator_loss",
]

# Added under the square root of the squared gradient norm so that the backward pass of the
# norm stays finite where the gradient is exactly zero (e.g. a dead ReLU critic). Its effect
# on the value is ~eps / (2 * norm), far below float32 resolution for norms near 1.
_NORM_EPS = 1e-12


# ---------------------------------------------------------------------------------------
# Gradient penalty
# ---------------------------------------------------------------------------------------


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    *,
    two_sided: bool = False,
    batch_dims: int = 1,
    reduction: str = "mean",
) -> tuple[Tensor, Tensor]:
    """Gradient penalty at points interpolated between ``real`` and ``fake``.

    For each sample ``i`` a weight ``t_i ~ U[0, 1)`` is drawn (one per sample, shared by all
    of the sample's elements) and ``z_i = t_i * real_i + (1 - t_i) * fake_i``. The gradient
    ``g = d(sum D(z)) / dz`` is taken with ``torch.autograd.grad(..., create_graph=True)``
    (out of place, so the penalty can be back-propagated into the critic's parameters) and
    its L2 norm is taken per sample over all non-batch dimensions.

    * ``two_sided=False`` (default, A-WGAN / DPE): ``P = mean_i max(0, ||g_i|| - 1)``.
    * ``two_sided=True`` (standard WGAN-GP): ``P = mean_i (||g_i|| - 1)^2``.

    Args:
        critic: module or callable mapping a batch like ``real`` to scores of any shape
            whose leading ``batch_dims`` dimensions match the input's (``(B,)``, ``(B, 1)``,
            patch maps, ...). A DDP-wrapped module works: it is simply called.
        real, fake: tensors of the same shape ``(B, ...)`` (any rank >= 1). Both are
            detached inside: the penalty only trains the critic.
        two_sided: use the squared two-sided WGAN-GP penalty instead of the one-sided one.
        batch_dims: how many leading dimensions index samples (default 1). A value of 2
            lets an ensemble of ``R`` independent critics take ``(R, B, ...)`` inputs, each
            sample getting its own ``t`` and its own norm.
        reduction: ``"mean"`` (default) returns 0-dim tensors; ``"none"`` returns the
            per-sample penalty and norm, of shape ``real.shape[:batch_dims]``.

    Returns:
        ``(penalty, grad_norm)``: the penalty (carries the graph; multiply it by lambda and
        add it to the critic loss) and the gradient norm (detached), both reduced as asked.
        The unscaled penalty is what the "released" A-WGAN rule feeds on; the mean norm is
        what the "paper" rule feeds on.
    """
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty: real {tuple(real.shape)} and fake {tuple(fake.shape)} differ")
    if not 1 <= batch_dims <= real.dim():
        raise ValueError(f"gradient_penalty: batch_dims={batch_dims} invalid for a rank-{real.dim()} input")
    if reduction not in ("mean", "none"):
        raise ValueError(f"gradient_penalty: reduction must be 'mean' or 'none', got {reduction!r}")

    real = real.detach()
    fake = fake.detach()
    batch_shape = real.shape[:batch_dims]
    t_shape = (*batch_shape, *([1] * (real.dim() - batch_dims)))
    t = torch.rand(t_shape, device=real.device, dtype=real.dtype)
    z = (t * real + (1.0 - t) * fake).requires_grad_(True)

    scores = critic(z)
    (grad,) = torch.autograd.grad(outputs=scores.sum(), inputs=z, create_graph=True)
    grad = grad.reshape(*batch_shape, -1)
    norm = torch.sqrt(grad.pow(2).sum(dim=-1) + _NORM_EPS)

    per_sample = (norm - 1.0).pow(2) if two_sided else F.relu(norm - 1.0)
    norm = norm.detach()
    if reduction == "mean":
        return per_sample.mean(), norm.mean()
    return per_sample, norm


# ---------------------------------------------------------------------------------------
# Adversarial losses
# ---------------------------------------------------------------------------------------


def wgan_critic_loss(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """WGAN critic loss ``-(E[D(real)] - E[D(fake)]) = E[D(fake)] - E[D(real)]``.

    Minimising it raises the scores of real samples and lowers those of fakes; its negation
    is the critic's estimate of the Wasserstein-1 distance. Add ``lambda * P`` yourself.
    """
    return d_fake.mean() - d_real.mean()


def wgan_generator_loss(d_fake: Tensor) -> Tensor:
    """WGAN generator loss ``-E[D(fake)]`` (the generator raises the scores of its fakes)."""
    return -d_fake.mean()


def lsgan_critic_loss(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """LSGAN critic loss ``0.5 * E[(D(real) - 1)^2] + 0.5 * E[D(fake)^2]`` (real -> 1, fake -> 0).

    The 1/2 factors follow Mao et al. (2017). Always >= 0; zero only for a perfect critic.
    """
    return 0.5 * (d_real - 1.0).pow(2).mean() + 0.5 * d_fake.pow(2).mean()


def lsgan_generator_loss(d_fake: Tensor) -> Tensor:
    """LSGAN generator loss ``0.5 * E[(D(fake) - 1)^2]`` (the generator pushes fakes to 1)."""
    return 0.5 * (d_fake - 1.0).pow(2).mean()


def vanilla_critic_loss(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """Standard GAN discriminator loss on logits: ``E[-log s(D(real))] + E[-log(1 - s(D(fake)))]``.

    ``s`` is the sigmoid; computed with ``binary_cross_entropy_with_logits`` (numerically
    stable). Equals ``2 log 2`` when both logits are 0.
    """
    return F.binary_cross_entropy_with_logits(
        d_real, torch.ones_like(d_real)
    ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))


def vanilla_generator_loss(d_fake: Tensor) -> Tensor:
    """Non-saturating generator loss on logits: ``E[-log s(D(fake))]``."""
    return F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))


CriticLoss = Callable[[Tensor, Tensor], Tensor]
GeneratorLoss = Callable[[Tensor], Tensor]

#: name -> (critic_loss(d_real, d_fake), generator_loss(d_fake)); both are minimised.
#: Only "wgan" is meant to be combined with a gradient penalty / A-WGAN.
ADVERSARIAL_LOSSES: dict[str, tuple[CriticLoss, GeneratorLoss]] = {
    "wgan": (wgan_critic_loss, wgan_generator_loss),
    "lsgan": (lsgan_critic_loss, lsgan_generator_loss),
    "vanilla": (vanilla_critic_loss, vanilla_generator_loss),
}


# ---------------------------------------------------------------------------------------
# Content losses
# ---------------------------------------------------------------------------------------


def _pair_loss(a: Tensor, b: Tensor, c: Tensor | None, d: Tensor | None, what: str, names: str,
               loss: Callable[[Tensor, Tensor], Tensor] = F.mse_loss) -> Tensor:
    """``loss(b, a) [+ loss(d, c)]``: (output, reference) pairs, the second one optional."""
    total = loss(b, a)
    if (c is None) != (d is None):
        raise ValueError(f"{what}: pass both {names} or neither")
    if c is not None:
        total = total + loss(d, c)
    return total


IDENTITY_SPACES = ("srgb", "log")
LOG_FLOOR = 0.05  # log(v + LOG_FLOOR): below about this level, differences count as in sRGB


def identity_loss(x: Tensor, y_fake: Tensor, y: Tensor | None = None, x_fake: Tensor | None = None,
                  *, space: str = "srgb") -> Tensor:
    """Identity (content-preservation) loss ``MSE(x, y') [+ MSE(y, x')]``.

    ``x``: input photos, ``y_fake = G_X(x)``: their enhanced versions (same shape). In the
    two-way (cycle) setting also pass ``y``: target-domain photos and ``x_fake = G_Y(y)``.
    MSE is the mean over all elements; the result is a 0-dim tensor.

    ``space="log"`` compares ``log(v + LOG_FLOOR)`` instead of the sRGB values, times
    ``(mean(x) + LOG_FLOOR)²`` (detached) so that a small change at the photos' mean level costs
    what it costs in sRGB and the weight α keeps its scale. In sRGB a gain ``k x`` that brightens
    a dark photo's mean by ``d`` costs ``E[x²] / E[x]²`` times a uniform lift ``x + d`` (1.6-1.7
    on dark source photos), so the identity term pushes a GAN toward lifted blacks, a hazy look;
    in log space a gain is a uniform shift and the lift is the expensive move.
    """
    if space not in IDENTITY_SPACES:
        raise ValueError(f"identity_loss: space {space!r} is not one of {', '.join(IDENTITY_SPACES)}")
    loss = F.mse_loss if space == "srgb" else _log_mse
    return _pair_loss(x, y_fake, y, x_fake, "identity_loss", "y and x_fake", loss)


def _log_mse(output: Tensor, reference: Tensor) -> Tensor:
    scale = (reference.detach().mean() + LOG_FLOOR) ** 2
    # a generator's raw output may go below 0, where the log would not be defined
    log = lambda v: torch.log(v.clamp_min(0.0) + LOG_FLOOR)  # noqa: E731
    return scale * F.mse_loss(log(output), log(reference))


def cycle_loss(x: Tensor, x_cycled: Tensor, y: Tensor | None = None, y_cycled: Tensor | None = None) -> Tensor:
    """Cycle-consistency loss ``MSE(x, x'') [+ MSE(y, y'')]``.

    ``x_cycled = G_Y(G_X(x))``; with the second pair, ``y_cycled = G_X(G_Y(y))``.
    """
    return _pair_loss(x, x_cycled, y, y_cycled, "cycle_loss", "y and y_cycled")


def supervised_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Supervised (paired) loss: MSE between the enhanced image and its retouched target."""
    return F.mse_loss(pred, target)
