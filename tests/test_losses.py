"""Tests of dpe_hf.losses: gradient penalty, adversarial losses, content losses."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dpe_hf import losses as L


def linear_critic(norm: float, in_shape: tuple[int, ...], seed: int = 0) -> nn.Module:
    """A critic D(x) = <w, flatten(x)> + b with ||w||_2 == norm exactly."""
    d = math.prod(in_shape)
    g = torch.Generator().manual_seed(seed)
    lin = nn.Linear(d, 1, dtype=torch.float64)
    with torch.no_grad():
        w = torch.randn(1, d, generator=g, dtype=torch.float64)
        lin.weight.copy_(w / w.norm() * norm)
        lin.bias.fill_(0.3)
    return nn.Sequential(nn.Flatten(), lin)


def batch(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64)


# -- gradient penalty ----------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 6, 7), (2, 2, 3, 4, 5)])
def test_penalty_zero_for_contractive_critic(shape):
    critic = linear_critic(0.5, shape[1:])
    pen, norm = L.gradient_penalty(critic, batch(shape, 1), batch(shape, 2))
    assert pen.item() == 0.0
    assert norm.item() == pytest.approx(0.5, rel=1e-9)


@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 6, 7)])
def test_penalty_linear_critic_norm_three(shape):
    critic = linear_critic(3.0, shape[1:])
    pen, norm = L.gradient_penalty(critic, batch(shape, 1), batch(shape, 2))
    assert pen.item() == pytest.approx(3.0 - 1.0, rel=1e-9)  # max(0, ||w|| - 1)
    assert norm.item() == pytest.approx(3.0, rel=1e-9)
    pen2, _ = L.gradient_penalty(critic, batch(shape, 1), batch(shape, 2), two_sided=True)
    assert pen2.item() == pytest.approx((3.0 - 1.0) ** 2, rel=1e-9)
    # the two-sided penalty also penalises small gradients
    pen3, _ = L.gradient_penalty(linear_critic(0.5, shape[1:]), batch(shape, 1), batch(shape, 2), two_sided=True)
    assert pen3.item() == pytest.approx(0.25, rel=1e-9)


def test_penalty_backpropagates_into_critic_and_not_into_inputs():
    critic = linear_critic(3.0, (4,))
    real = batch((6, 4), 1)
    fake = batch((6, 4), 2).requires_grad_(True)
    pen, norm = L.gradient_penalty(critic, real, fake)
    assert not norm.requires_grad
    pen.backward()
    w = critic[1].weight
    # d/dw (||w|| - 1) = w / ||w||
    torch.testing.assert_close(w.grad, w.detach() / w.detach().norm())
    assert fake.grad is None


def test_penalty_per_sample_norms_and_interpolation():
    # D(x) = 0.5 * ||x||^2: grad = z, so the norm is ||t*real + (1-t)*fake||, which lies on the
    # segment between ||real|| and ||fake|| when both point the same way.
    critic = lambda x: 0.5 * x.pow(2).sum(dim=1)  # noqa: E731
    real = torch.tensor([[2.0, 0.0], [0.0, 4.0]])
    fake = torch.tensor([[3.0, 0.0], [0.0, 6.0]])
    torch.manual_seed(0)
    pen, norm = L.gradient_penalty(critic, real, fake, reduction="none")
    assert pen.shape == norm.shape == (2,)
    assert 2.0 <= norm[0] <= 3.0 and 4.0 <= norm[1] <= 6.0
    torch.testing.assert_close(pen, norm - 1.0)


def test_penalty_batch_dims_for_critic_ensembles():
    # two independent linear critics applied to (R=2, B, D) inputs
    w = torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.0, 0.5]])
    critic = lambda x: (x * w[:, None, :]).sum(-1)  # noqa: E731
    real, fake = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    pen, norm = L.gradient_penalty(critic, real, fake, batch_dims=2, reduction="none")
    assert pen.shape == (2, 5)
    torch.testing.assert_close(norm, torch.tensor([[3.0] * 5, [0.5] * 5]))
    torch.testing.assert_close(pen, torch.tensor([[2.0] * 5, [0.0] * 5]))


def test_penalty_finite_for_zero_gradient_and_patch_outputs():
    conv = nn.Conv2d(3, 1, 3, padding=1)
    with torch.no_grad():
        conv.weight.zero_()
    pen, norm = L.gradient_penalty(conv, torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8))
    pen.backward()
    assert pen.item() == 0.0 and norm.item() == pytest.approx(0.0, abs=1e-5)
    assert torch.isfinite(conv.weight.grad).all()


def test_penalty_rejects_bad_arguments():
    critic = linear_critic(1.0, (3,))
    with pytest.raises(ValueError):
        L.gradient_penalty(critic, torch.randn(2, 3), torch.randn(3, 3))
    with pytest.raises(ValueError):
        L.gradient_penalty(critic, torch.randn(2, 3), torch.randn(2, 3), reduction="sum")


# -- adversarial losses --------------------------------------------------------------------


def test_wgan_signs():
    d_real = torch.tensor([[2.0], [4.0]])
    d_fake = torch.tensor([[-1.0], [1.0]])
    assert L.wgan_critic_loss(d_real, d_fake).item() == pytest.approx(0.0 - 3.0)
    assert L.wgan_generator_loss(d_fake).item() == 0.0
    assert L.wgan_generator_loss(torch.tensor([3.0, 5.0])).item() == -4.0
    # gradient directions: the critic raises real scores, lowers fake scores
    dr = d_real.clone().requires_grad_(True)
    df = d_fake.clone().requires_grad_(True)
    L.wgan_critic_loss(dr, df).backward()
    assert (dr.grad < 0).all() and (df.grad > 0).all()
    df2 = d_fake.clone().requires_grad_(True)
    L.wgan_generator_loss(df2).backward()
    assert (df2.grad < 0).all()


def test_lsgan_values():
    d_real = torch.tensor([1.0, 3.0])  # (d-1)^2 = 0, 4 -> mean 2
    d_fake = torch.tensor([0.0, -2.0, 1.0, 1.0])  # d^2 -> mean (0+4+1+1)/4 = 1.5
    assert L.lsgan_critic_loss(d_real, d_fake).item() == pytest.approx(0.5 * 2.0 + 0.5 * 1.5)
    assert L.lsgan_generator_loss(d_fake).item() == pytest.approx(0.5 * (1 + 9 + 0 + 0) / 4)
    assert L.lsgan_critic_loss(torch.ones(3), torch.zeros(3)).item() == 0.0


def test_vanilla_values():
    z = torch.zeros(4, 1)
    assert L.vanilla_critic_loss(z, z).item() == pytest.approx(2 * math.log(2))
    assert L.vanilla_generator_loss(z).item() == pytest.approx(math.log(2))
    d_real = torch.tensor([2.0])
    d_fake = torch.tensor([-1.0])
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    expected = -math.log(sig(2.0)) - math.log(1 - sig(-1.0))
    assert L.vanilla_critic_loss(d_real, d_fake).item() == pytest.approx(expected, rel=1e-6)
    assert L.vanilla_generator_loss(d_fake).item() == pytest.approx(-math.log(sig(-1.0)), rel=1e-6)
    # numerically stable for huge logits
    assert math.isfinite(L.vanilla_critic_loss(torch.tensor([-1e4]), torch.tensor([1e4])).item())


def test_registry():
    assert set(L.ADVERSARIAL_LOSSES) == {"wgan", "lsgan", "vanilla"}
    assert L.ADVERSARIAL_LOSSES["wgan"] == (L.wgan_critic_loss, L.wgan_generator_loss)
    assert L.ADVERSARIAL_LOSSES["lsgan"] == (L.lsgan_critic_loss, L.lsgan_generator_loss)
    assert L.ADVERSARIAL_LOSSES["vanilla"] == (L.vanilla_critic_loss, L.vanilla_generator_loss)


# -- content losses ------------------------------------------------------------------------


def test_identity_cycle_supervised():
    x = torch.zeros(2, 3, 4, 4)
    y = torch.ones(2, 3, 4, 4)
    assert L.identity_loss(x, x + 2.0).item() == pytest.approx(4.0)
    assert L.identity_loss(x, x + 2.0, y, y - 1.0).item() == pytest.approx(5.0)
    assert L.cycle_loss(x, x + 1.0).item() == pytest.approx(1.0)
    assert L.cycle_loss(x, x + 1.0, y, y + 3.0).item() == pytest.approx(10.0)
    assert L.supervised_loss(y * 3, y).item() == pytest.approx(4.0)
    with pytest.raises(ValueError):
        L.identity_loss(x, x, y)
    with pytest.raises(ValueError):
        L.cycle_loss(x, x, None, y)


def test_log_identity_is_hand_computed_value():
    x = torch.full((1, 3, 2, 2), 0.15)
    out = torch.full((1, 3, 2, 2), 0.35)
    # (mean(x) + 0.05)² · (log(0.40) - log(0.20))² = 0.04 · log(2)²
    expected = 0.04 * math.log(2.0) ** 2
    assert L.identity_loss(x, out, space="log").item() == pytest.approx(expected, rel=1e-5)
    assert L.identity_loss(x, out, x, out, space="log").item() == pytest.approx(2 * expected, rel=1e-5)
    assert L.identity_loss(x, x, space="log").item() == 0.0
    with pytest.raises(ValueError, match="space"):
        L.identity_loss(x, x, space="lab")
    with pytest.raises(ValueError):
        L.identity_loss(x, x, x, space="log")


def test_log_identity_charges_a_lift_more_than_a_gain_on_a_dark_photo():
    # a dark photo with a few highlights; brighten its mean by 0.1 with a gain or a uniform lift
    torch.manual_seed(0)
    dark = (torch.rand(1, 3, 32, 32) ** 3) * 0.6
    gain = dark * (dark.mean() + 0.1) / dark.mean()
    lift = dark + 0.1
    assert gain.mean().item() == pytest.approx(lift.mean().item(), abs=1e-6)
    # in sRGB the lift is the cheaper move (what hazes a GAN); in log space the gain is
    assert L.identity_loss(dark, lift).item() < L.identity_loss(dark, gain).item()
    assert L.identity_loss(dark, gain, space="log").item() < 0.5 * L.identity_loss(dark, lift, space="log").item()


# The DDP half runs in a child process that leaves with os._exit: tearing down a gloo group
# can hang in torch's destructors (seen once in CI, the pytest process stuck joining a gloo
# thread), and a child that skips them cannot hang the suite.
DDP_CHILD = """
import os, sys, torch, torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from dpe_hf import losses as L

out = sys.argv[1]
dist.init_process_group("gloo", init_method="file://" + out + ".pg", rank=0, world_size=1)
critic = DDP(torch.load(out + ".model", weights_only=False))
real, fake = torch.load(out + ".data")
torch.manual_seed(1)
pen, norm = L.gradient_penalty(critic, real, fake)
(L.wgan_critic_loss(critic(real), critic(fake)) + 10.0 * pen).backward()
torch.save((pen.detach(), norm, [p.grad for p in critic.module.parameters()]), out + ".result")
sys.stdout.flush()
os._exit(0)
"""


def test_penalty_through_ddp_wrapped_critic(tmp_path):
    import os
    import subprocess
    import sys

    import torch.distributed as dist

    if not dist.is_available():
        pytest.skip("torch.distributed unavailable")
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1))
    with torch.no_grad():
        plain[2].weight.mul_(20.0)  # make the penalty active
    real, fake = torch.randn(8, 3), torch.randn(8, 3)
    out = str(tmp_path / "ddp")
    torch.save(plain, out + ".model")
    torch.save((real, fake), out + ".data")
    subprocess.run([sys.executable, "-c", DDP_CHILD, out], check=True, timeout=120,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    pen_ddp, norm_ddp, grads_ddp = torch.load(out + ".result", weights_only=False)

    torch.manual_seed(1)
    pen, norm = L.gradient_penalty(plain, real, fake)
    (L.wgan_critic_loss(plain(real), plain(fake)) + 10.0 * pen).backward()
    assert pen.item() > 0
    torch.testing.assert_close(pen_ddp, pen.detach())
    torch.testing.assert_close(norm_ddp, norm)
    for a, b in zip(grads_ddp, (p.grad for p in plain.parameters())):
        torch.testing.assert_close(a, b)
