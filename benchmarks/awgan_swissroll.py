"""A-WGAN vs fixed-lambda WGAN-GP on a 2-D swiss roll (the claim of Fig. 3 of the paper).

Claim under test: with a fixed penalty weight, WGAN-GP only reaches the target for a good
lambda, while A-WGAN (adaptive lambda, :class:`dpe_hf.awgan.AdaptiveLambda`) reaches it from
any initial lambda0.

Setup (all runs share it; only the penalty weight rule and lambda0 differ):

* target: swiss roll ``t = 1.5*pi*(1 + 2u)``, ``u ~ U[0, 1)``, points ``(t cos t, t sin t) / 5``
  plus N(0, 0.05^2) noise per coordinate (radius about 0.9 to 2.8);
* generator: MLP noise(``--nz``, default 2-D Gaussian) -> 64 -> 64 -> 64 -> 2, ReLU;
* critic: MLP 2 -> 64 -> 64 -> 64 -> 1, ReLU;
* WGAN loss with the one-sided penalty ``P = E[max(0, ||grad D(z)|| - 1)]`` of
  :func:`dpe_hf.losses.gradient_penalty` for every method, 5 critic steps per generator
  step, 3,000 generator steps, Adam(lr 5e-4, betas (0.5, 0.9)) for both nets, batch 64.
  (With lr 1e-4 no method draws the spiral within this budget -- every run that does not
  diverge is still a blob, SW2 ~0.13 -- so the default is 5e-4; at 1e-4 fixed lambda0 = 0.1
  *and* 1 diverge, while both A-WGAN rules stay stable from every lambda0.);
* methods: ``awgan-paper`` (window-50 rule of the paper), ``awgan-released`` (the authors'
  TF rule), ``wgan-gp`` (fixed lambda = lambda0), each with lambda0 in {0.1, 1, 10, 100};
* for a given seed every method and lambda0 starts from the same generator/critic weights
  and sees the same noise and target batches.

Metric: sliced 2-Wasserstein distance ``SW2 = sqrt(mean_theta W2^2(<theta, X>, <theta, Y>))``
over 1,000 random directions, between 2,000 generated points and 2,000 fresh target points
(exact 1-D W2 per direction by sorting). It is a proper distance between distributions;
with finite samples it has a floor, printed as ``target vs target`` (two independent target
samples), which is what a perfect generator would score. ``meanSW2(last 20%)`` averages the
same distance over the evaluations in the last 20% of training (less noisy than the final
value alone). Numbers are medians over seeds, with [min, max] in brackets.

All runs are trained *together*: the generators (critics) of the R runs are stacked into one
batched MLP whose weights have a leading run dimension, and the sum of the R per-run losses
is minimised. Nothing mixes across runs (per-run losses depend only on the run's own weights
and Adam is element-wise), so this is R independent trainings done with batched matmuls:
one CPU core runs the whole grid in a few minutes.

Usage::

    python benchmarks/awgan_swissroll.py            # full default grid: 36 runs, one thread;
                                                    # 347 s / 603 s measured on a shared 2-core
                                                    # machine at load ~3.5 / ~4.7 (niced)
    python benchmarks/awgan_swissroll.py --quick    # seconds: checks that it runs
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dpe_hf.awgan import AdaptiveLambda  # noqa: E402
from dpe_hf.losses import gradient_penalty, wgan_critic_loss, wgan_generator_loss  # noqa: E402

METHODS = {
    # name: AdaptiveLambda rule
    "awgan-paper": "paper",
    "awgan-released": "released",
    "wgan-gp": "fixed",
}


# ---------------------------------------------------------------------------------------
# data and metric
# ---------------------------------------------------------------------------------------


def swiss_roll(n: int, *, generator: torch.Generator | None = None, noise: float = 0.05) -> Tensor:
    u = torch.rand(n, generator=generator)
    t = 1.5 * math.pi * (1.0 + 2.0 * u)
    pts = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=-1) / 5.0
    return pts + noise * torch.randn(n, 2, generator=generator)


def sliced_w2(x: Tensor, y: Tensor, theta: Tensor) -> Tensor:
    """Sliced 2-Wasserstein distance between point sets x (..., N, 2) and y (N, 2).

    theta: (P, 2) unit directions. Leading dims of x are batched over. Returns (...,).
    """
    px = torch.sort(x @ theta.T, dim=-2).values  # (..., N, P)
    py = torch.sort(y @ theta.T, dim=-2).values  # (N, P)
    return (px - py).pow(2).mean(dim=(-2, -1)).sqrt()


# ---------------------------------------------------------------------------------------
# R independent MLPs evaluated as one batched MLP
# ---------------------------------------------------------------------------------------


class BatchedMLP(nn.Module):
    """R independent MLPs (ReLU between layers); input (R, B, in) -> output (R, B, out).

    Run r is initialised like ``nn.Linear`` (U(+-1/sqrt(fan_in)) weights and biases) from
    ``torch.Generator().manual_seed(seeds[r])``, so runs with equal seeds start equal.
    """

    def __init__(self, sizes: list[int], seeds: list[int]) -> None:
        super().__init__()
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        gens = {s: torch.Generator().manual_seed(s) for s in set(seeds)}
        per_seed: dict[int, list[tuple[Tensor, Tensor]]] = {}
        for s, g in gens.items():
            layers = []
            for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
                bound = 1.0 / math.sqrt(fan_in)
                w = (torch.rand(fan_in, fan_out, generator=g) * 2 - 1) * bound
                b = (torch.rand(1, fan_out, generator=g) * 2 - 1) * bound
                layers.append((w, b))
            per_seed[s] = layers
        for i in range(len(sizes) - 1):
            self.weights.append(nn.Parameter(torch.stack([per_seed[s][i][0] for s in seeds])))
            self.biases.append(nn.Parameter(torch.stack([per_seed[s][i][1] for s in seeds])))

    def forward(self, x: Tensor) -> Tensor:
        n = len(self.weights)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, w)
            if i < n - 1:
                x = torch.relu(x)
        return x


# ---------------------------------------------------------------------------------------
# experiment
# ---------------------------------------------------------------------------------------


@dataclass
class Run:
    method: str
    lambda0: float
    seed: int
    ctrl: AdaptiveLambda


def train(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.data_seed)
    runs = [
        Run(m, lam, s, AdaptiveLambda(METHODS[m], lambda0=lam))
        for m in args.methods
        for lam in args.lambdas
        for s in range(args.seeds)
    ]
    R, B, S = len(runs), args.batch_size, args.seeds
    seed_idx = torch.tensor([r.seed for r in runs])
    hidden = [args.hidden] * 3
    G = BatchedMLP([args.nz, *hidden, 2], [1000 + r.seed for r in runs])
    D = BatchedMLP([2, *hidden, 1], [2000 + r.seed for r in runs])
    opt_g = torch.optim.Adam(G.parameters(), lr=args.lr, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), lr=args.lr, betas=(0.5, 0.9))
    lam = torch.tensor([r.ctrl.value for r in runs])

    eval_gen = torch.Generator().manual_seed(12345)
    eval_noise = torch.randn(args.eval_samples, args.nz, generator=eval_gen)
    eval_target = swiss_roll(args.eval_samples, generator=eval_gen)
    theta = torch.randn(args.projections, 2, generator=eval_gen)
    theta = theta / theta.norm(dim=1, keepdim=True)
    floor = sliced_w2(swiss_roll(args.eval_samples, generator=eval_gen)[None], eval_target, theta).item()

    def evaluate() -> Tensor:
        with torch.no_grad():
            samples = G(eval_noise.expand(R, -1, -1))
            return sliced_w2(samples, eval_target, theta)

    total_critic = args.steps * args.n_critic
    tail_from = total_critic - max(1, total_critic // 10)
    eval_every = max(1, args.steps // args.evals)
    tail_eval_from = args.steps - max(1, int(args.steps * 0.2))
    norm_tail_sum = torch.zeros(R, dtype=torch.float64)
    norm_tail_n = 0
    history: list[tuple[int, Tensor]] = []
    critic_step = 0
    t0 = time.time()
    for step in range(1, args.steps + 1):
        # -- critic ----------------------------------------------------------------------
        for p in D.parameters():
            p.requires_grad_(True)
        for _ in range(args.n_critic):
            real = torch.stack([swiss_roll(B) for _ in range(S)])[seed_idx]
            noise = torch.randn(S, B, args.nz)[seed_idx]
            with torch.no_grad():
                fake = G(noise)
            pen, norm = gradient_penalty(D, real, fake, batch_dims=2, reduction="none")
            pen_run = pen.mean(dim=1)  # (R,) raw one-sided penalty per run
            # sum over runs of each run's own loss: R * (mean over runs of the WGAN loss)
            d_both = D(torch.cat([real, fake], dim=1))  # one pass for real and fake
            loss_d = R * wgan_critic_loss(d_both[:, :B], d_both[:, B:]) + (lam * pen_run).sum()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            norm_run = norm.mean(dim=1).double()
            if critic_step >= tail_from:
                norm_tail_sum += norm_run
                norm_tail_n += 1
            critic_step += 1
            for r, n_r, p_r in zip(runs, norm_run.tolist(), pen_run.detach().tolist()):
                r.ctrl.update(n_r, p_r)
            lam = torch.tensor([r.ctrl.value for r in runs])
        # -- generator -------------------------------------------------------------------
        for p in D.parameters():
            p.requires_grad_(False)
        noise = torch.randn(S, B, args.nz)[seed_idx]
        loss_g = R * wgan_generator_loss(D(G(noise)))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

        if step % eval_every == 0 or step == args.steps:
            history.append((step, evaluate()))
            if args.verbose:
                print(
                    f"  step {step}/{args.steps} ({time.time() - t0:.0f}s) "
                    f"median SW2 {history[-1][1].median():.3f}",
                    file=sys.stderr,
                    flush=True,
                )

    final = history[-1][1]
    tail = torch.stack([v for s, v in history if s >= tail_eval_from]).mean(dim=0)
    with torch.no_grad():
        samples = G(eval_noise.expand(R, -1, -1))
    return {
        "runs": runs,
        "final": final.tolist(),
        "tail": tail.tolist(),
        "grad_norm_tail": (norm_tail_sum / max(1, norm_tail_n)).tolist(),
        "samples": samples,
        "target": eval_target,
        "floor": floor,
        "seconds": time.time() - t0,
        "history": history,
    }


# ---------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------


def _fmt_stat(values: list[float], fmt: str) -> str:
    med = statistics.median(values)
    if len(values) == 1:
        return format(med, fmt)
    return f"{format(med, fmt)} [{format(min(values), fmt)}, {format(max(values), fmt)}]"


def table(res: dict, args: argparse.Namespace) -> str:
    runs: list[Run] = res["runs"]
    lines = [
        f"swiss roll, {args.steps} generator steps x n_critic {args.n_critic}, batch {args.batch_size}, "
        f"hidden {args.hidden}, Adam lr {args.lr:g}, "
        f"seeds {args.seeds} (median [min, max]), SW2 over {args.projections} projections x "
        f"{args.eval_samples} samples; target vs target floor = {res['floor']:.4f}",
        f"{'method':<15} {'lambda0':>7}  {'final SW2':<24} {'mean SW2 (last 20%)':<24} "
        f"{'grad norm (last 10%)':<24} {'final lambda':<26}",
    ]
    for m in args.methods:
        for lam in args.lambdas:
            idx = [i for i, r in enumerate(runs) if r.method == m and r.lambda0 == lam]
            final = [res["final"][i] for i in idx]
            tail = [res["tail"][i] for i in idx]
            gn = [res["grad_norm_tail"][i] for i in idx]
            lams = [runs[i].ctrl.value for i in idx]
            lines.append(
                f"{m:<15} {lam:>7g}  {_fmt_stat(final, '.3f'):<24} {_fmt_stat(tail, '.3f'):<24} "
                f"{_fmt_stat(gn, '.3f'):<24} {_fmt_stat(lams, '.3g'):<26}"
            )
    lines.append(f"({len(runs)} runs trained in {res['seconds']:.0f} s)")
    return "\n".join(lines)


def plot(res: dict, args: argparse.Namespace, path: Path) -> None:
    """Grid (rows: methods, columns: lambda0) of seed-0 samples (blue) over the target (grey);
    under each cell the seed-0 final SW2 and final lambda."""
    from PIL import Image, ImageDraw

    runs: list[Run] = res["runs"]
    cell, pad, head, left = 240, 6, 22, 110
    rows, cols = len(args.methods), len(args.lambdas)
    img = Image.new("RGB", (left + cols * (cell + pad), head + rows * (cell + pad + 16)), "white")
    draw = ImageDraw.Draw(img)
    lim = 3.3

    def to_px(pts: Tensor, x0: int, y0: int) -> list[tuple[float, float]]:
        xy = ((pts.clamp(-lim, lim) + lim) / (2 * lim) * (cell - 1)).tolist()
        return [(x0 + a, y0 + (cell - 1) - b) for a, b in xy]

    target = res["target"][:1000]
    for j, lam in enumerate(args.lambdas):
        draw.text((left + j * (cell + pad) + cell // 2 - 30, 4), f"lambda0 = {lam:g}", fill="black")
    for i, m in enumerate(args.methods):
        y0 = head + i * (cell + pad + 16)
        draw.text((4, y0 + cell // 2), m, fill="black")
        for j, lam in enumerate(args.lambdas):
            x0 = left + j * (cell + pad)
            draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], outline=(180, 180, 180))
            k = next(n for n, r in enumerate(runs) if r.method == m and r.lambda0 == lam and r.seed == 0)
            for x, y in to_px(target, x0, y0):
                draw.point((x, y), fill=(170, 170, 170))
            for x, y in to_px(res["samples"][k][:1000], x0, y0):
                draw.rectangle([x - 1, y - 1, x, y], fill=(30, 90, 200))
            draw.text(
                (x0 + 4, y0 + cell + 2),
                f"SW2 {res['final'][k]:.3f}  lambda {runs[k].ctrl.value:.3g}",
                fill="black",
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=3000, help="generator steps")
    p.add_argument("--n-critic", type=int, default=5)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--lambdas", type=float, nargs="+", default=[0.1, 1.0, 10.0, 100.0])
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--nz", type=int, default=2)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--evals", type=int, default=20, help="evaluations during training")
    p.add_argument("--eval-samples", type=int, default=2000)
    p.add_argument("--projections", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--plot", type=Path, default=ROOT / "docs" / "awgan_swissroll.png")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--quick", action="store_true", help="tiny run to check that everything works")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.seeds, args.evals = min(args.steps, 20), 1, 2
        args.eval_samples, args.projections, args.hidden, args.batch_size = 200, 50, 32, 64
        if args.plot == ROOT / "docs" / "awgan_swissroll.png":
            args.no_plot = True
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    res = train(args)
    print(table(res, args))
    if not args.no_plot:
        plot(res, args, args.plot)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
