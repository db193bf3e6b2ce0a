"""GAN modes: the paper's 1-way GAN and 2-way GAN with individual BN, trained as (A-)WGAN.

One `train_step` is one **critic** step (`config.steps` counts them); every `gan.n_critic`
critic steps the generator(s) take one step on the same batch (paper and released code: 50).
The step is written out explicitly, in the style of pytorch-CycleGAN-and-pix2pix's
`cycle_gan_model.py`: the critics are frozen (`requires_grad=False`) during the generator
step and every loss has a name and is logged.

Notation (docs/method.md): x = a source photo ("ordinary"), y = a target photo ("liked").

* 1-way: G_X and the critic D_Y.
  critic:    L_D = D_Y(y') - D_Y(y) + λ_Y P_Y,   y' = G_X(x) (detached)
  generator: L_G = -D_Y(y') + α MSE(x, y')
* 2-way: G_X, G_Y with individual BN (bn_set 0 for real inputs, 1 for generated ones),
  critics D_X and D_Y. y' = G_X(x, 0), x'' = G_Y(y', 1), x' = G_Y(y, 0), y'' = G_X(x', 1).
  critic:    L_D = [D_Y(y') - D_Y(y) + λ_Y P_Y] + [D_X(x') - D_X(x) + λ_X P_X]
  generator: L_G = -D_Y(y') - D_X(x') + α I + 10 α C,
             I = MSE(x, y') + MSE(y, x'), C = MSE(x, x'') + MSE(y, y'')

P is the one-sided gradient penalty at points between real and fake samples
(`dpe_hf.losses.gradient_penalty`). With `gan.loss: lsgan | vanilla` the adversarial terms come
from `ADVERSARIAL_LOSSES` and there is no penalty (λ is ignored).

Design choices
--------------
* **One λ controller per critic** (`D_X`, `D_Y`). Each critic's Lipschitz behaviour is its
  own (the two domains and the two critics differ), and a λ shared by both would be driven
  by whichever critic is worse, over- or under-penalising the other. Each `AdaptiveLambda`
  is updated after every critic step with that critic's gradient norm and raw penalty,
  **averaged over the processes** first, so λ is identical on every process; both are
  registered with `accelerator.register_for_checkpointing` (saved and restored with the
  models; order: D_Y then D_X).
* **The penalty is computed in float32**, outside autocast, through the critic's un-autocast
  forward: with bf16 the gradient norm would have a resolution of ~0.008 around 1, coarser
  than the paper rule's lower bound 1.001.
* **DDP.** Generators and critics are `accelerator.prepare`d (DDP with several processes,
  default arguments). Only calls that need gradient synchronisation go through the DDP
  wrapper: the generators in the generator step (G_X and G_Y are each called twice before one
  backward; that is fine for DDP: each parameter's gradient accumulator fires once per
  backward, and with individual BN the two calls together use every parameter) and the
  critics' score pass in the critic step. The critics in the generator step (frozen: a DDP
  module whose parameters get no gradient would wait forever for their reduction), the
  generators in the critic step (no grad) and the penalty's second critic pass (its gradient
  reaches the same parameters within the same backward) use the unwrapped modules. BN
  running statistics differ per process; DDP broadcasts rank 0's at each wrapped forward
  and the loop broadcasts them once more at the end.
* G_Y does not take `model.init_from` (a trained enhancer is no start for the inverse
  mapping); it starts from `model.inverse_init_from` (e.g. a supervised run with
  `data.reverse`), else from the near-identity init like a fresh generator. A G_X that starts
  trained and a G_Y that starts at the identity make the cycle loss, 10 α MSE(x, G_Y(G_X(x))),
  an identity loss ten times α's: it pulls G_X back to the identity before G_Y can learn.
* The generator step reuses the critic step's batch (as the released code does: both
  updates of an iteration read the same feed).
* Gradient accumulation is not supported in the GAN modes (`grad_accum` must be 1).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
from pathlib import Path

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from dpe_hf.awgan import RULES, AdaptiveLambda
from dpe_hf.data import corpora
from dpe_hf.errors import ConfigError
from dpe_hf.losses import ADVERSARIAL_LOSSES, IDENTITY_SPACES, cycle_loss, gradient_penalty, identity_loss
from dpe_hf.models.discriminator import NORMS as CRITIC_NORMS
from dpe_hf.models.discriminator import DPEDiscriminator
from dpe_hf.training.config import TrainConfig
from dpe_hf.training.data import generated_folder, held_out_ids, skip_retouches_of
from dpe_hf.training.guards import buffer_snapshot, injected_nan_steps, nonfinite, restore_buffers
from dpe_hf.training.models import build_generator
from dpe_hf.training.schedule import lr_at, lr_factor

GRID_ROWS = 4  # fixed source crops shown in the image grid
GRID_SEED = 4_242  # their crop seed: not any process's training seed
TARGET_SEED_OFFSET = 500  # target stream seed = source stream seed + this


class _InputSide:
    """The degraded (input) side of a `SyntheticPairs` stream, as an unpaired source stream."""

    def __init__(self, pairs: corpora.SyntheticPairs):
        self.pairs = pairs

    def __iter__(self):
        return self

    def __next__(self) -> torch.Tensor:
        return next(self.pairs)[0]

    def state_dict(self) -> dict:
        return self.pairs.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.pairs.load_state_dict(state)


def _set_requires_grad(modules, flag: bool) -> None:
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(flag)


def _fp32_forward(module: nn.Module):
    """The module's forward without Accelerate's mixed-precision (autocast) wrapper."""
    return getattr(module, "_original_forward", module.forward)


def freeze_batch_norm(model: nn.Module) -> None:
    """`model`'s BN layers normalise with their running statistics and never update them, in
    any mode. Fine-tuning a trained generator on batches of 4 source crops would otherwise move
    the statistics it enhances with: 200 such batches, without any weight update, took a
    synthetic-pretrained model from 21.53 to 20.24 dB on fivek-dev."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.register_forward_pre_hook(_use_running_statistics)


def _use_running_statistics(module: nn.Module, args) -> None:
    module.training = False  # model.train() sets it back; this runs before every call


class GANTask:
    """1-way or 2-way GAN training (`config.mode` "gan1way" / "gan2way"); see the module doc.
    A `Task` (task.py) for the loop.

    `with_data=False` builds the models and optimisers only (benchmarks, unit tests): then
    drive it with `critic_step(x, y)` and `generator_step(x, y)`.
    """

    def __init__(self, config: TrainConfig, accelerator, *, with_data: bool = True):
        if config.mode not in ("gan1way", "gan2way"):
            raise ConfigError(f"GANTask: mode {config.mode!r} is not gan1way or gan2way")
        gan = config.gan
        if gan.loss not in ADVERSARIAL_LOSSES:
            raise ConfigError(f"gan.loss: {gan.loss!r} is not one of {', '.join(ADVERSARIAL_LOSSES)}")
        if gan.loss == "wgan" and gan.lambda_rule not in RULES:
            raise ConfigError(f"gan.lambda_rule: {gan.lambda_rule!r} is not one of {', '.join(RULES)}")
        if gan.critic_norm not in CRITIC_NORMS:
            raise ConfigError(f"gan.critic_norm: {gan.critic_norm!r} is not one of {', '.join(CRITIC_NORMS)}")
        if gan.identity_to not in ("input", "start"):
            raise ConfigError(f"gan.identity_to: {gan.identity_to!r} is not one of input, start")
        if gan.identity_space not in IDENTITY_SPACES:
            raise ConfigError(f"gan.identity_space: {gan.identity_space!r} is not one of {', '.join(IDENTITY_SPACES)}")
        if gan.n_critic < 1:
            raise ConfigError(f"gan.n_critic must be >= 1, got {gan.n_critic}")
        if config.grad_accum != 1:
            raise ConfigError("grad_accum: gradient accumulation is not supported in the GAN modes (use 1)")
        self.config = config
        self.accelerator = accelerator
        self.two_way = config.mode == "gan2way"
        self.cycle_weight = 10.0 * gan.alpha if gan.cycle_weight is None else gan.cycle_weight
        self.critic_loss_fn, self.generator_loss_fn = ADVERSARIAL_LOSSES[gan.loss]
        self.use_penalty = gan.loss == "wgan"

        # -- models and optimisers (same initial weights on every process: the loop seeded) ---
        g_x = build_generator(config, individual_bn=self.two_way)
        d_y = DPEDiscriminator(width=gan.critic_width, norm=gan.critic_norm)
        generators, critics = [g_x], [d_y]
        if self.two_way:
            inverse_config = dataclasses.replace(
                config, model=dataclasses.replace(config.model, init_from=config.model.inverse_init_from))
            generators.append(build_generator(inverse_config, individual_bn=True))
            critics.append(DPEDiscriminator(width=gan.critic_width, norm=gan.critic_norm))
        if gan.frozen_bn:
            for g in generators:
                freeze_batch_norm(g)
        memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        for m in generators + critics:
            m.to(memory_format=memory_format)
        g_opt = torch.optim.Adam(itertools.chain(*(g.parameters() for g in generators)),
                                 lr=config.lr, betas=config.betas)
        critic_lr = config.lr if gan.critic_lr is None else gan.critic_lr
        d_opt = torch.optim.Adam(itertools.chain(*(d.parameters() for d in critics)),
                                 lr=critic_lr, betas=config.betas)
        # identity_to "start": frozen copies of the generators as they start (model.init_from,
        # inverse_init_from); made before any step, so a resumed run gets the same copies
        self.start_generators = None
        if gan.identity_to == "start":
            self.start_generators = [copy.deepcopy(g).eval().requires_grad_(False).to(accelerator.device)
                                     for g in generators]
        prepared = accelerator.prepare(*generators, *critics, g_opt, d_opt)
        n = len(generators)
        self.generators, self.critics = list(prepared[:n]), list(prepared[n:2 * n])
        self.g_opt, self.d_opt = prepared[2 * n:]
        self.schedulers = [LambdaLR(self.g_opt, lambda step: lr_factor(config, step)),
                           LambdaLR(self.d_opt, lambda step: self._critic_lr_factor(step))]
        # Unwrapped modules (same parameters): for calls that must not go through DDP.
        self.raw_generators = [accelerator.unwrap_model(g) for g in self.generators]
        self.raw_critics = [accelerator.unwrap_model(d) for d in self.critics]
        self.critic_names = ["D_Y", "D_X"][:n]  # D_Y judges G_X's outputs, D_X judges G_Y's

        # -- A-WGAN: one controller per critic, saved in checkpoints ---------------------------
        self.controllers: dict[str, AdaptiveLambda] = {}
        if self.use_penalty:
            for name in self.critic_names:
                self.controllers[name] = AdaptiveLambda(rule=gan.lambda_rule, lambda0=gan.lambda0)
            accelerator.register_for_checkpointing(*self.controllers.values())

        self._last_generator_values: dict[str, float] = {}
        self._inject_nan = injected_nan_steps(accelerator)  # testing hook (see its doc); empty normally
        self._grid_inputs: torch.Tensor | None = None
        self._sources = (None, None)
        self.source_stream = self.target_stream = None
        if with_data:
            self._build_streams()

    # -- learning rate -----------------------------------------------------------------------
    def _critic_lr_factor(self, step: int) -> float:
        """The critic's lr at `step` as a multiple of its initial lr: the generator's schedule.
        A `gan.critic_lr` of its own scales by the generator's lr over `lr`, one division, so that
        every step's lr is the float it was when the loop set it by hand."""
        config = self.config
        if config.gan.critic_lr is None:
            return lr_factor(config, step)
        return lr_at(config, step) / config.lr if config.lr > 0 else 1.0

    # -- data --------------------------------------------------------------------------------
    def _make_source(self, real, degraded, seed: int):
        """Crops of the ordinary photos `real`, and of the good photos `degraded` after the
        synthetic edits (`data.degrade`); `data.degraded_share` of them degraded when both are given."""
        data = self.config.data
        streams = []
        if real is not None:
            streams.append(corpora.ImageCrops(real, data.crop, seed, max_side=data.max_side))
        if degraded is not None:
            streams.append(_InputSide(corpora.SyntheticPairs(degraded, data.crop, seed, max_side=data.max_side,
                                                             degrade_config=data.degrade)))
        share = data.degraded_share
        return streams[0] if len(streams) == 1 else corpora.MixedPairs(streams, [1 - share, share], seed)

    def _build_streams(self) -> None:
        config, data, accelerator = self.config, self.config.data, self.accelerator
        rank, world = accelerator.process_index, accelerator.num_processes
        seed = config.seed * 1000 + rank
        folder = generated_folder(config, accelerator)  # None unless data.generated > 0
        generated = None if folder is None else corpora.load_images(str(folder), streaming=data.streaming)
        skip = skip_retouches_of(held_out_ids(data))

        def photos(folders):
            return corpora.load_images(folders, streaming=data.streaming, skip=skip) if folders else None

        real, degraded = photos(data.source), photos(data.degraded_source)
        if real is None and degraded is None:  # smoke runs: procedural photos, degraded, are the "ordinary" ones
            degraded = generated
        target = photos(data.target) if data.target else generated
        if (real is None and degraded is None) or target is None:
            raise ConfigError(f"{config.mode} needs unpaired data: data.source (--source) or data.degraded_source, "
                              "and data.target (--target) folders or dataset ids, or data.generated > 0 for a "
                              "smoke run")
        self._sources = (real, degraded)
        self.source_stream = self._make_source(*(None if s is None else corpora.shard_for_process(s, rank, world)
                                                 for s in self._sources), seed)
        self.target_stream = corpora.ImageCrops(corpora.shard_for_process(target, rank, world), data.crop,
                                                seed + TARGET_SEED_OFFSET, max_side=data.max_side)

    def _batch(self, stream) -> torch.Tensor:
        memory_format = torch.channels_last if self.config.channels_last else torch.contiguous_format
        batch = torch.stack([next(stream) for _ in range(self.config.batch_size)])
        return batch.to(self.accelerator.device, memory_format=memory_format)

    # -- one critic step -----------------------------------------------------------------------
    @torch.no_grad()
    def _fakes(self, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """[y' = G_X(x)] (+ [x' = G_Y(y)] in 2-way) for the critics, generators untouched.

        The generators run in training mode (batch statistics, as in the generator step),
        which also re-estimates their BN running statistics. Those are what inference uses,
        and they would be moved at every critic step (n_critic times per generator step) by
        batches of crops the generators are not being trained on: 300 critic steps without
        any weight update took a started-from model from 21.65 to 20.93 dB. So every buffer
        is put back: only the generator step moves them."""
        acc = self.accelerator
        saved = buffer_snapshot(*self.raw_generators)
        try:
            with acc.autocast():
                fakes = [self.raw_generators[0](x, bn_set=0).float()]  # y' = G_X(x)
                if self.two_way:
                    fakes.append(self.raw_generators[1](y, bn_set=0).float())  # x' = G_Y(y)
        finally:
            restore_buffers(saved)
        return fakes

    def critic_step(self, x: torch.Tensor, y: torch.Tensor, *, inject_nan: bool = False) -> dict[str, float]:
        """Update the critic(s) once on real batches x (source) and y (target); returns the logs.
        A NaN/Inf loss (on any process) skips the update and the λ controllers' update, and
        adds `skipped/nonfinite: 1` to the logs. `inject_nan` is the fault-injection testing hook."""
        acc = self.accelerator
        _set_requires_grad(self.raw_critics, True)
        fakes = self._fakes(x, y)
        reals = [y, x]
        total = 0.0
        terms: dict[str, torch.Tensor] = {}
        stats = []
        for name, critic, raw, real, fake in zip(self.critic_names, self.critics, self.raw_critics, reals, fakes):
            b = real.shape[0]
            with acc.autocast():
                scores = critic(torch.cat([real, fake])).float()
            adversarial = self.critic_loss_fn(scores[:b], scores[b:])
            loss = adversarial
            terms[f"{name}/adv"] = adversarial.detach()
            if self.use_penalty:
                # float32, outside autocast (see the module doc), through the unwrapped critic
                with torch.autocast(device_type=acc.device.type, enabled=False):
                    penalty, norm = gradient_penalty(_fp32_forward(raw), real.float(), fake)
                loss = loss + self.controllers[name].value * penalty
                stats += [norm.detach(), penalty.detach()]
            terms[f"{name}/loss"] = loss.detach()
            total = total + loss
        if inject_nan:
            total = total * float("nan")
        if nonfinite(acc, total):
            self.d_opt.zero_grad(set_to_none=True)
            values = {k: v.item() for k, v in terms.items()}
            values["D/total"] = total.detach().float().item()
            values["skipped/nonfinite"] = 1
            return values
        acc.backward(total)
        self.d_opt.step()
        self.d_opt.zero_grad(set_to_none=True)

        values = {k: v.item() for k, v in terms.items()}
        if self.use_penalty:
            # the same statistics on every process, so every process's λ moves alike
            reduced = acc.reduce(torch.stack(stats).float(), reduction="mean").tolist()
            for i, name in enumerate(self.critic_names):
                norm, penalty = reduced[2 * i], reduced[2 * i + 1]
                controller = self.controllers[name]
                controller.update(norm, penalty)
                values[f"{name}/grad_norm"] = norm
                values[f"{name}/penalty"] = penalty
                # the window's mean is NaN right after lambda moved (the window restarts): left out
                values.update({f"{name}/{k}": v for k, v in controller.log_dict().items() if math.isfinite(v)})
        return values

    # -- one generator step --------------------------------------------------------------------
    def generator_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Update the generator(s) once, critics frozen; returns the logs. A NaN/Inf loss (on
        any process) skips the update and adds `skipped/nonfinite: 1` to the logs."""
        acc, alpha = self.accelerator, self.config.gan.alpha
        _set_requires_grad(self.raw_critics, False)
        try:
            with acc.autocast():
                g_x = self.generators[0]
                y_fake = g_x(x, bn_set=0).float()  # y' = G_X(x)
                adv_y = self.generator_loss_fn(self.raw_critics[0](y_fake).float())
                values = {}
                if self.two_way:
                    g_y = self.generators[1]
                    x_cycled = g_y(y_fake, bn_set=1).float()  # x'' = G_Y(y')
                    x_fake = g_y(y, bn_set=0).float()  # x' = G_Y(y)
                    y_cycled = g_x(x_fake, bn_set=1).float()  # y'' = G_X(x')
                    adv_x = self.generator_loss_fn(self.raw_critics[1](x_fake).float())
                    adversarial = adv_y + adv_x
                    x_ref, y_ref = self._identity_references(x, y)
                    identity = identity_loss(x_ref, y_fake, y_ref, x_fake, space=self.config.gan.identity_space)
                    cycle = cycle_loss(x.float(), x_cycled, y.float(), y_cycled)
                    loss = adversarial + alpha * identity + self.cycle_weight * cycle
                    values.update({"G/adv_Y": adv_y, "G/adv_X": adv_x, "G/cycle": cycle})
                else:
                    adversarial = adv_y
                    (x_ref,) = self._identity_references(x, y)
                    identity = identity_loss(x_ref, y_fake, space=self.config.gan.identity_space)
                    loss = adversarial + alpha * identity
                values.update({"G/adv": adversarial, "G/identity": identity, "G/loss": loss})
            skipped = nonfinite(acc, loss)
            if not skipped:
                acc.backward(loss)
                self.g_opt.step()
            self.g_opt.zero_grad(set_to_none=True)
        finally:
            _set_requires_grad(self.raw_critics, True)
        values = {k: v.detach().item() for k, v in values.items()}
        if skipped:
            values["skipped/nonfinite"] = 1
        return values

    @torch.no_grad()
    def _identity_references(self, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """What the identity loss holds each generator's output to, G_X's then (2-way) G_Y's:
        its input (the paper), or with `gan.identity_to: start` its output as it started. A
        trained enhancer held to its input is pulled back to the identity: from a
        synthetic-pretrained G_X, 200 generator steps took fivek-dev from 21.53 to 17-18 dB (the
        input: 17.28)."""
        inputs = [x, y][:len(self.raw_generators)]
        if self.start_generators is None:
            return [v.float() for v in inputs]
        return [g(v, bn_set=0).float() for g, v in zip(self.start_generators, inputs)]

    # -- what the loop calls -----------------------------------------------------------------
    def train_step(self, step: int) -> dict[str, float]:
        x, y = self._batch(self.source_stream), self._batch(self.target_stream)
        done = step + 1
        inject = done in self._inject_nan  # testing hook: the critic loss of this step is NaN, once
        self._inject_nan.discard(done)
        models = [*self.raw_generators, *self.raw_critics]
        snapshot = buffer_snapshot(*models)  # a skipped step's forward passes must not move BN stats
        values = self.critic_step(x, y, inject_nan=inject)
        if values.get("skipped/nonfinite"):
            restore_buffers(snapshot)
        if done % self.config.gan.n_critic == 0:
            snapshot = buffer_snapshot(*models)
            generator_values = self.generator_step(x, y)
            if generator_values.pop("skipped/nonfinite", 0):
                restore_buffers(snapshot)
                values["skipped/nonfinite"] = 1
            self._last_generator_values = generator_values
        values.update({k: v for k, v in self._last_generator_values.items() if k not in values})
        values["lr"] = self.g_opt.param_groups[0]["lr"]
        values["lr_critic"] = self.d_opt.param_groups[0]["lr"]
        every = self.config.gan.image_every
        if every and (done % every == 0 or done == self.config.steps) and self.accelerator.is_main_process:
            self.save_image_grid(done)
        return values

    def enhancer(self) -> nn.Module:
        return self.raw_generators[0]

    def data_state(self) -> dict:
        return {"source": self.source_stream.state_dict(), "target": self.target_stream.state_dict()}

    def load_data_state(self, state: dict) -> None:
        self.source_stream.load_state_dict(state["source"])
        self.target_stream.load_state_dict(state["target"])

    def final_models(self) -> dict[str, nn.Module]:
        models = {"generator": self.raw_generators[0]}
        if self.two_way:
            models["generator_inverse"] = self.raw_generators[1]
        return models

    # -- image grid ----------------------------------------------------------------------------
    def grid_inputs(self) -> torch.Tensor:
        """`GRID_ROWS` fixed source crops (the same for the whole run and on resume)."""
        if self._grid_inputs is None:
            stream = self._make_source(*self._sources, GRID_SEED)
            self._grid_inputs = torch.stack([next(stream) for _ in range(GRID_ROWS)])
        return self._grid_inputs

    @torch.no_grad()
    def save_image_grid(self, step: int) -> Path:
        """RUN_DIR/images/step_XXXXXXXX.png: one row per fixed source crop, input | output."""
        import numpy as np
        from PIL import Image

        generator = self.enhancer()
        was_training = generator.training
        generator.eval()  # running statistics: does not touch the training state
        try:
            x = self.grid_inputs().to(self.accelerator.device)
            out = generator(x, bn_set=0).float().clamp(0, 1)
        finally:
            generator.train(was_training)
        rows = torch.cat([x.float().cpu(), out.cpu()], dim=3)  # (R,3,h,2w)
        grid = torch.cat(list(rows), dim=1)  # (3,R*h,2w)
        array = (grid.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
        folder = Path(self.config.output_dir) / "images"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"step_{step:08d}.png"
        Image.fromarray(array).save(path)
        try:
            tracker = self.accelerator.get_tracker("tensorboard")
            tracker.log_images({"samples/input|output": array[None]}, step=step, dataformats="NHWC")
        except Exception:  # noqa: BLE001 - images are a convenience; the PNG is written
            pass
        return path
