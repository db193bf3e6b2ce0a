"""2-way GAN training speed: critic steps/s and generator steps/s (dpe_hf.training.gan.GANTask).

    python benchmarks/train_speed.py [--quick] [--sizes 512 256] [--batches 1 4] [--width 1.0]

One row per device x crop size x batch x option, where the options are
* fp32           float32, contiguous tensors;
* bf16           Accelerate's bf16 autocast (the gradient penalty stays float32, as in training);
* channels_last  float32, models and batches in channels-last memory format;
* compile        float32, the generators through `torch.compile` (the critics stay eager: their
                 gradient penalty needs a double backward, which compiled graphs do not support).
The last column is the speed of a whole update (n_critic 50) as a ratio to the fp32 row of the
same device, size and batch: the plain loop, measured in the same run (list fp32 first).
Models are full width by default (the paper's generators G_X, G_Y with individual BN and
critics D_X, D_Y). Each figure is the median over `--repeats` (3) timings of `--iters`
iterations, after one warm-up iteration that is not timed. The last column is the time of one
generator update at the paper's schedule (n_critic = 50 critic steps + 1 generator step).
GPU rows are added when CUDA is available. Run with OMP_NUM_THREADS set to the number of
cores you give it. `--quick`: 128 px, batch 1, one iteration per timing (a smoke check).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # run from a checkout without installing

OPTIONS = {  # name -> (mixed precision, channels_last, torch.compile of the generators)
    "fp32": ("no", False, False),
    "bf16": ("bf16", False, False),
    "channels_last": ("no", True, False),
    "compile": ("no", False, True),
}


def make_task(device: str, option: str, width: float, output_dir: str):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    from dpe_hf.training.config import build_config
    from dpe_hf.training.gan import GANTask

    precision, channels_last, compiled = OPTIONS[option]
    AcceleratorState._reset_state(True)  # a fresh Accelerator per option (mixed precision is global)
    accelerator = Accelerator(cpu=device == "cpu", mixed_precision=precision)
    config = build_config({"mode": "gan2way", "mixed_precision": precision, "channels_last": channels_last,
                           "output_dir": output_dir, "model": {"width": width}, "gan": {"critic_width": width}})
    torch.manual_seed(0)
    task = GANTask(config, accelerator, with_data=False)
    if compiled:  # in place, so the prepared and the raw references both run it; not the critics:
        for generator in task.raw_generators:  # the gradient penalty's double backward does not compile
            generator.compile()
    return task


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def seconds_per_step(step, x, y, device: str, iters: int, repeats: int) -> float:
    step(x, y)  # warm-up (allocations, autotuning), not timed
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        for _ in range(iters):
            step(x, y)
        _sync(device)
        times.append((time.perf_counter() - start) / iters)
    return statistics.median(times)


def run(devices, sizes, batches, options, width, iters, repeats) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for device in devices:
            for option in options:
                task = make_task(device, option, width, tmp)
                memory_format = torch.channels_last if OPTIONS[option][1] else torch.contiguous_format
                for size in sizes:
                    for b in batches:
                        gen = torch.Generator().manual_seed(size * 10 + b)
                        x, y = (torch.rand(b, 3, size, size, generator=gen).to(device, memory_format=memory_format)
                                for _ in range(2))
                        critic = seconds_per_step(task.critic_step, x, y, device, iters, repeats)
                        generator = seconds_per_step(task.generator_step, x, y, device, iters, repeats)
                        row = {"device": device, "size": size, "batch": b, "option": option,
                               "critic_steps_per_s": 1.0 / critic, "generator_steps_per_s": 1.0 / generator,
                               "s_per_update_ncritic50": 50 * critic + generator}
                        plain = next((r for r in rows if r["option"] == "fp32" and r["device"] == device
                                      and r["size"] == size and r["batch"] == b), row if option == "fp32" else None)
                        row["x_fp32"] = (plain["s_per_update_ncritic50"] / row["s_per_update_ncritic50"]
                                         if plain else None)
                        rows.append(row)
                        print(format_row(row), flush=True)
                del task
    return rows


HEADER = (f"{'device':<6} {'size':>5} {'batch':>5} {'option':<14} {'critic steps/s':>14} "
          f"{'gen steps/s':>11} {'s per G update (n_critic 50)':>29} {'x fp32':>7}")


def format_row(row: dict) -> str:
    ratio = "-" if row.get("x_fp32") is None else f"{row['x_fp32']:.2f}"
    return (f"{row['device']:<6} {row['size']:>5} {row['batch']:>5} {row['option']:<14} "
            f"{row['critic_steps_per_s']:>14.3f} {row['generator_steps_per_s']:>11.3f} "
            f"{row['s_per_update_ncritic50']:>29.1f} {ratio:>7}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="128 px, batch 1, 1 iteration per timing")
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 256])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    p.add_argument("--options", nargs="+", choices=list(OPTIONS), default=list(OPTIONS))
    p.add_argument("--width", type=float, default=1.0, help="model width (1.0 = the paper's)")
    p.add_argument("--iters", type=int, default=3, help="iterations per timing")
    p.add_argument("--repeats", type=int, default=3, help="timings; the median is reported")
    p.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.batches, args.iters = [128], [1], 1
    devices = ["cpu"] if args.device == "cpu" else ["cuda"] if args.device == "cuda" else (
        ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, width {args.width}, "
          f"median of {args.repeats} x {args.iters} iteration(s) after 1 warm-up")
    print(HEADER)
    print("-" * len(HEADER))
    run(devices, args.sizes, args.batches, args.options, args.width, args.iters, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
