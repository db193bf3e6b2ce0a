"""What pulls a GAN fine-tune of a trained enhancer where it goes: the measurements behind
configs/dpe-expertC-unpaired.yaml (docs/training.md, "Unpaired toward expert C").

    python benchmarks/gan_diagnostics.py --start runs/unpaired-pretrain \\
        [--inverse runs/unpaired-inverse] [--runs RUN ...] [--data ../shared/data]

Prints, on photos of the recipe's source folders (no pair is used):
* gain vs lift: what the identity term charges for brightening a photo's mean by 0.1 with a
  gain (k x) against a uniform lift (x + 0.1), in sRGB (the paper's MSE) and in log space
  (`gan.identity_space: log`); medians over the photos and over the dark ones (mean < 0.25);
* loss terms at the start: MSE(G_X(x), x) and the cycle MSE(x, G_Y(G_X(x))) on source crops,
  with G_Y at the identity and, given --inverse, started from that run; times α 250 and 10 α;
* BN drift: fivek-dev PSNR of --start before and after 200 training-mode forward passes of
  batches of 4 source crops, without any weight update;
* for each --runs RUN: PSNR of its output against its own input over the fivek-dev inputs
  (high: near the identity);
* gain or lift: on the fivek-dev inputs at long side 256, the outputs' luma mean, std (contrast)
  and share below 0.1 (shadows), and the line fitted to each photo's luma change against its
  luma (offset + slope x luma, averaged: a lift raises the offset, a gain the slope), for
  --start and for each run; then for each run with one group of its parameters put back to
  --start's values (the last conv, the rest of the decoder, the encoder, the global path, the
  BN layers): the group whose return undoes the change is where the change lives.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import add_data_option, data_folder  # noqa: E402

SOURCES = ("source/sice-part1", "source/lowlight", "source/dpe-internet")
ALPHA = 250.0
# the generator's parameter groups, by name prefix (BN layers: "bn" in the name, or a "post" block)
GROUPS = {"last conv": ("out.",), "decoder": ("d0.", "d1.", "up", "post", "d6."),
          "encoder": ("e1.", "e2.", "e3.", "e4.", "e5."), "global path": ("g1.", "g2.", "g3.", "g4.")}


def small_copy(path) -> np.ndarray:
    """The photo at `path` at long side 256, float32 H x W x 3 in [0, 1]."""
    from dpe_hf.imageio import read_image, to_float32
    from dpe_hf.ops.guided import downscale_long_side

    return to_float32(downscale_long_side(read_image(path)[0], 256))


def gain_vs_lift(files) -> dict[str, float]:
    from dpe_hf.losses import LOG_FLOOR

    def lg(v):  # the identity term's log space
        return np.log(v + LOG_FLOOR)

    srgb, log, dark = [], [], []
    for f in files:
        x = small_copy(f).astype(np.float64)
        mean = x.mean()
        gain, lift = np.clip(x * (mean + 0.1) / mean, 0, 1), np.clip(x + 0.1, 0, 1)
        srgb.append(((gain - x) ** 2).mean() / ((lift - x) ** 2).mean())
        log.append(((lg(gain) - lg(x)) ** 2).mean() / ((lg(lift) - lg(x)) ** 2).mean())
        dark.append(mean < 0.25)
    srgb, log, dark = np.array(srgb), np.array(log), np.array(dark)
    return {"sRGB": float(np.median(srgb)), "sRGB dark": float(np.median(srgb[dark])),
            "log": float(np.median(log)), "log dark": float(np.median(log[dark])), "dark": int(dark.sum())}


def mean_psnr(model, pairs) -> float:
    """Mean PSNR over `pairs` ((name, input, reference) paths) of the model's outputs."""
    from dpe_hf.evaluation import evaluate_pairs, mean_scores
    from dpe_hf.inference import enhance

    model.eval()
    return mean_scores(evaluate_pairs(pairs, lambda im: enhance(model, im)).rows)["psnr"]


def tone_change(model, photos) -> list[float]:
    """Luma mean, std and share below 0.1 of the model's outputs, and the offset and slope of the
    line fitted to each photo's luma change against its luma, averaged over `photos` (tensors)."""
    import torch

    rows = []
    with torch.no_grad():
        for x in photos:
            luma_in, luma_out = (0.299 * v[0, 0] + 0.587 * v[0, 1] + 0.114 * v[0, 2]
                                 for v in (x, model(x).clamp(0, 1)))
            slope, offset = np.polyfit(luma_in.flatten().numpy(), (luma_out - luma_in).flatten().numpy(), 1)
            rows.append([float(luma_out.mean()), float(luma_out.std()), float((luma_out < 0.1).float().mean()),
                         offset, slope])
    return np.mean(rows, axis=0).tolist()


def with_group_restored(run, start_state: dict, group: str):
    """A copy of `run` with the parameters of `group` (a GROUPS key, or "BN") set to `start_state`'s."""
    import copy

    def member(key: str) -> bool:
        in_bn = ".bn" in key or key.startswith("post")
        return in_bn if group == "BN" else not in_bn and key.startswith(GROUPS[group])

    restored = copy.deepcopy(run)
    restored.load_state_dict({k: (start_state[k] if member(k) else v) for k, v in run.state_dict().items()})
    return restored.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_option(parser)
    parser.add_argument("--start", required=True, help="the trained G_X a GAN starts from")
    parser.add_argument("--inverse", help="the G_Y it starts from (a run with data.reverse)")
    parser.add_argument("--runs", nargs="*", default=[], help="GAN runs: how near the identity they ended")
    parser.add_argument("--photos", type=int, default=120, help="photos per source folder for gain vs lift")
    args = parser.parse_args(argv)
    data = data_folder(parser, args.data)

    import torch

    from dpe_hf.data import corpora
    from dpe_hf.evaluation import pair_by_stem
    from dpe_hf.hub import load_generator
    from dpe_hf.imageio import list_images
    from dpe_hf.models.generator import DPEGenerator

    rng = np.random.default_rng(0)
    print("identity cost of a gain / of a lift brightening the mean by 0.1 (median; dark: mean < 0.25)")
    for folder in SOURCES[:2]:
        files = list_images(data / folder, recursive=True)
        files = [files[i] for i in rng.choice(len(files), min(args.photos, len(files)), replace=False)]
        r = gain_vs_lift(files)
        print(f"  {folder:20s} sRGB {r['sRGB']:.2f} (dark {r['sRGB dark']:.2f})   "
              f"log {r['log']:.2f} (dark {r['log dark']:.2f})   {len(files)} photos, {r['dark']} dark")

    images = corpora.load_images([str(data / s) for s in SOURCES])
    crops = iter(corpora.ImageCrops(images, 128, 0, max_side=256))
    x = torch.stack([next(crops) for _ in range(32)])
    g_x = load_generator(args.start).eval()
    with torch.no_grad():
        enhanced = g_x(x)
        change = float(((enhanced - x) ** 2).mean())
        print(f"loss terms at the start (32 source crops): MSE(G_X(x), x) {change:.4f}: "
              f"identity α·{change:.4f} = {ALPHA * change:.2f}; cycle with G_Y at the identity "
              f"10α·{change:.4f} = {10 * ALPHA * change:.2f}")
        if args.inverse:
            cycle = float(((load_generator(args.inverse).eval()(enhanced) - x) ** 2).mean())
            print(f"  cycle with G_Y from {args.inverse}: 10α·{cycle:.4f} = {10 * ALPHA * cycle:.2f}")

    pairs = pair_by_stem(data / "fivek-dev" / "input", data / "fivek-dev" / "expertC").pairs
    drifting = DPEGenerator(width=g_x.width, individual_bn=True)
    drifting.load_single_bn_weights(g_x.state_dict())
    before = mean_psnr(drifting, pairs)
    drifting.train()
    with torch.no_grad():
        for _ in range(200):
            drifting(torch.stack([next(crops) for _ in range(4)]), bn_set=0)
    print(f"BN drift: fivek-dev {before:.2f} dB -> {mean_psnr(drifting, pairs):.2f} dB after 200 "
          "training-mode batches of 4 source crops, weights unchanged")

    to_input = [(name, photo, photo) for name, photo, _ in pairs]  # scored against its own input
    for spec in [args.start, *args.runs]:
        print(f"output vs input, fivek-dev: {spec}: {mean_psnr(load_generator(spec), to_input):.2f} dB")

    photos = [torch.from_numpy(small_copy(p)).permute(2, 0, 1)[None] for _, p, _ in pairs]
    print(f"gain or lift, {len(photos)} fivek-dev inputs at 256: brightness, contrast, shadows; luma change = offset "
          "+ slope x luma")
    line = "  {:44s} {:.3f}  {:.3f}  {:.3f}   {:+.3f} {:+.3f}"
    print(line.format("the inputs", *tone_change(lambda v: v, photos)[:3], 0.0, 0.0))
    print(line.format(f"{args.start} (start)", *tone_change(g_x, photos)))
    for spec in args.runs:
        run = load_generator(spec).eval()
        print(line.format(spec, *tone_change(run, photos)))
        start = DPEGenerator(width=g_x.width, individual_bn=run.individual_bn)
        start.load_single_bn_weights(g_x.state_dict())
        for group in (*GROUPS, "BN"):
            restored = with_group_restored(run, start.state_dict(), group)
            print(line.format(f"    with its {group} from the start", *tone_change(restored, photos)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
