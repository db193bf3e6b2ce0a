"""Train recipe variants on every fold of the fivek-dev cross-validation, in parallel, and score
each (variant, seed) with benchmarks/crossval.py: the way to compare recipes on a GPU machine.

    python benchmarks/cv_sweep.py --data ../shared/data --out runs/sweep --seeds 0 1 2 \\
        --variant steps1000 steps=1000 --variant steps2000 --set ema_decay=0.995 [--parallel 24] [--final]

A variant is a name and the `--set` values it adds to configs/dpe-expertC.yaml (after the
`--set` values common to all); the folds are crossval.py's: every third fivek-dev id in sorted
order, the first fold being the bundled config's own split. Each run goes to
OUT/VARIANT/sSEED/foldK and is resumed if it is there (a finished one is kept), so a sweep
stopped by `--deadline` (each running training gets SIGTERM and saves a checkpoint) goes on
where it stopped when run again. Prints a table of pooled PSNR / SSIM / ΔE00 per variant and
seed, and writes OUT/results.json. Runs that published a weight average (ema_decay) are also
scored on their last weights (VARIANT/online, the runs' generator_online). With several variants, the
choice among them is itself cross-validated (`choose_on_other_folds`): each fold is scored with
the variant that the other folds chose, so the reported recipe's score comes from pairs that did
not choose it. With `--final`, each variant and seed is
also trained on all the pairs (OUT/VARIANT/sSEED/all, no validation): the model to ship once
the cross-validation has chosen the recipe.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "dpe-expertC.yaml"
FOLDS = 3


def fold_ids(data: Path) -> list[tuple[list[str], list[str]]]:
    """(training ids, held-out ids) of each fold: fold k holds out every third id from the k-th."""
    ids = sorted(p.stem for p in (data / "fivek-dev" / "input").iterdir() if not p.name.startswith("."))
    return [([i for i in ids if i not in ids[k::FOLDS]], ids[k::FOLDS]) for k in range(FOLDS)]


def run_command(args, run: Path, seed: int, sets: list[str], trained: list[str], held_out: list[str]) -> list[str]:
    flags = [f"seed={seed}", f"data.ids=[{','.join(trained)}]", f"data.val_ids=[{','.join(held_out)}]",
             *args.set, *sets]
    return [sys.executable, str(REPO / "train_accelerate.py"), "--config", str(CONFIG), "--data", str(args.data),
            "--output-dir", str(run), "--resume", *[x for flag in flags for x in ("--set", flag)]]


def train_all(args, jobs: list[tuple[Path, list[str]]]) -> None:
    """Run the jobs, `args.parallel` at a time, until done or until the deadline."""
    deadline = time.monotonic() + args.deadline if args.deadline else None
    todo = [job for job in jobs if not (job[0] / "generator").is_dir()]
    running: list[tuple[subprocess.Popen, Path, object]] = []  # (process, run folder, its log file)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    while todo or running:
        if deadline and time.monotonic() > deadline:
            for proc, _, _ in running:
                proc.send_signal(signal.SIGTERM)  # the run saves a checkpoint and exits
            for proc, _, log in running:
                proc.wait()
                log.close()
            print(f"deadline: stopped {len(running)} runs, {len(todo)} not started", flush=True)
            return
        while todo and len(running) < args.parallel:
            run, command = todo.pop(0)
            run.mkdir(parents=True, exist_ok=True)
            # own datasets cache: parallel runs would otherwise queue on one cache's file locks
            log = open(run.parent / f"{run.name}.log", "a")
            running.append((subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                             env={**env, "HF_DATASETS_CACHE": str(run / "hf_cache")}), run, log))
        time.sleep(2)
        for job in list(running):
            proc, run, log = job
            if proc.poll() is not None:
                running.remove(job)
                log.close()
                print(f"{run}: exit {proc.returncode}", flush=True)


def score(args, variant: str, seed: int, runs: list[Path], folder: str) -> dict | None:
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "crossval.py"), "--data", str(args.data),
                             "--runs", *map(str, runs), "--model-folder", folder, "--json"],
                            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if result.returncode != 0:
        print(f"{variant} seed {seed}: crossval failed: {result.stderr.strip()[-500:]}", flush=True)
        return None
    return json.loads(result.stdout)


def choose_on_other_folds(rows: list[dict]) -> list[dict]:
    """The choice of variant, cross-validated: for each fold, the variant whose runs score the
    best mean PSNR on the pairs of the OTHER folds (seeds pooled), and what that variant scores
    on this fold's pairs, which took no part in choosing it. `rows`: cv_sweep's result rows
    ({"variant", "per_pair": [{"fold": run folder, "psnr"}, ...]}). One dict per fold:
    {"fold", "chosen", "psnr", "scores"} (scores: how many pair scores, seeds included)."""
    scores: dict[str, dict[str, list[float]]] = {}  # variant -> fold -> PSNR of each (pair, seed)
    for row in rows:
        for pair in row["per_pair"]:
            scores.setdefault(row["variant"], {}).setdefault(Path(pair["fold"]).name, []).append(pair["psnr"])
    folds = sorted({fold for by_fold in scores.values() for fold in by_fold})
    out = []
    for fold in folds:
        def elsewhere(variant: str) -> float:
            return statistics.mean(p for f, psnrs in scores[variant].items() if f != fold for p in psnrs)

        chosen = max(scores, key=elsewhere)
        out.append({"fold": fold, "chosen": chosen, "psnr": statistics.mean(scores[chosen][fold]),
                    "scores": len(scores[chosen][fold])})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="data folder holding fivek-dev/ and the synthetic photos")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variant", nargs="+", action="append", required=True, metavar=("NAME", "KEY=VALUE"),
                        help="a variant's name and the --set values it adds")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="--set for every run")
    parser.add_argument("--parallel", type=int, default=2, help="trainings at a time")
    parser.add_argument("--final", action="store_true", help="also train each variant and seed on all pairs")
    parser.add_argument("--deadline", type=float, default=None, help="stop the trainings after this many seconds")
    args = parser.parse_args(argv)
    args.data = args.data.resolve()
    folds = fold_ids(args.data)
    plan = {(v[0], seed): [args.out / v[0] / f"s{seed}" / f"fold{k + 1}" for k in range(FOLDS)]
            for seed in args.seeds for v in args.variant}
    sets = {v[0]: v[1:] for v in args.variant}
    jobs = [(run, run_command(args, run, seed, sets[variant], *folds[k]))
            for (variant, seed), runs in plan.items() for k, run in enumerate(runs)]
    if args.final:
        every = sorted(folds[0][0] + folds[0][1])
        jobs += [(run.parent / "all", run_command(args, run.parent / "all", seed, [*sets[variant], "val_every=0"],
                                                   every, every))
                 for (variant, seed), (run, *_) in plan.items()]
    start = time.monotonic()
    train_all(args, jobs)
    print(f"training: {time.monotonic() - start:.0f} s", flush=True)

    from concurrent.futures import ThreadPoolExecutor

    # generator_online is there only where the runs kept a weight average: the folders say which
    tasks = [(variant + suffix, seed, runs, folder) for (variant, seed), runs in plan.items()
             for suffix, folder in (("", "generator"), ("/online", "generator_online"))
             if all((run / folder).is_dir() for run in runs)]
    with ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:
        scored = list(pool.map(lambda t: score(args, *t), tasks))
    rows, baselines = [], {}
    for (name, seed, _, _), result in zip(tasks, scored):
        if result is None:
            continue
        model = next(m for m in result["methods"] if m["name"] == "model")
        rows.append({"variant": name, "seed": seed, **{k: model[k] for k in ("psnr", "ssim", "delta_e", "harm")},
                     "folds": [model[f"fold{k + 1}"] for k in range(FOLDS)], "per_pair": result["per_pair"]["model"]})
        baselines = {m["name"]: m for m in result["methods"] if m["name"] != "model"}  # the same in every fold set
    args.out.mkdir(parents=True, exist_ok=True)
    nested = choose_on_other_folds(rows)
    (args.out / "results.json").write_text(json.dumps({"rows": rows, "baselines": baselines, "nested": nested},
                                                      indent=1))
    print(f"{'variant':<24} {'seed':>4} {'PSNR':>6} {'SSIM':>6} {'dE00':>6} {'harm':>6}  folds")
    for row in rows:
        print(f"{row['variant']:<24} {row['seed']:>4} {row['psnr']:6.2f} {row['ssim']:6.3f} {row['delta_e']:6.2f} "
              f"{row['harm']:>6}  " + " ".join(f"{p:.2f}" for p in row["folds"]))
    for name in dict.fromkeys(row["variant"] for row in rows):
        mine = [row for row in rows if row["variant"] == name]
        psnrs = [r["psnr"] for r in mine]
        print(f"{name:<24} {'mean':>4} " + " ".join(f"{statistics.mean(r[k] for r in mine):6.{d}f}"
                                                    for k, d in (("psnr", 2), ("ssim", 3), ("delta_e", 2)))
              + f"  ({len(mine)} seeds, PSNR spread {max(psnrs) - min(psnrs):.2f} dB)")
    if len({row["variant"] for row in rows}) > 1:
        total = sum(n["scores"] for n in nested)
        print("the choice of variant, scored on folds that did not make it: "
              + ", ".join(f"{n['fold']} {n['chosen']} {n['psnr']:.2f}" for n in nested)
              + f"; pooled {sum(n['psnr'] * n['scores'] for n in nested) / total:.2f} dB")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
