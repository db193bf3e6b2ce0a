"""K-fold cross-validation over the fivek-dev pairs: every pair scored by a model that did not
train on it.

    python benchmarks/crossval.py --runs RUN [RUN ...] [--data ../shared/data] [--model-folder F]
        [--auto-exposure] [--levels W [W ...]] [--average-with RUN [RUN ...]] [--json]

Each RUN is a training run folder (`train_accelerate.py --output-dir`): its config.yaml names
the pairs it trained on (`data.ids`) and the pairs it held out (`data.val_ids`), and the run
folder loads as its model. A fine-tune that trains on no pairs of its own (a GAN stage) counts
the pairs of the run it started from (`model.init_from`, `model.inverse_init_from`). No run
may hold out a pair it trained on, and no pair may be held out by two runs.
configs/dpe-expertC.yaml gives the `--set` flags that train its folds.

Prints one row per method with PSNR / SSIM / ΔE00 against expert C over all held-out pairs
pooled (each pair weighing alike), then the PSNR of each fold, then "harm": the pairs that the
method leaves more than 1 dB (PSNR) further from expert C than the input was, e.g. "3/14":

* identity, auto-levels  as in quality.py (`dpe_hf.baselines`);
* fixed LUT              quality.py's `--lut-from`, fitted in each fold to that fold's training
                         pairs: expert C's average look, learnt from the same pairs as the model;
* model                  each fold's run, on the pairs it held out;
* model + auto exposure  with `--auto-exposure`: the same, each photo re-exposed first
                         (`dpe enhance --auto-exposure`): what evening out exposure costs here;
* model + levels W       with `--levels W`: the same, W of auto-levels mixed into the output
                         (`dpe enhance --levels W`). With several W, the weight is also chosen
                         as cv_sweep.py chooses variants (`choose_on_other_folds`): each fold
                         is scored with the W (0 among them) that did best on the other folds.
* runs averaged          with `--average-with`, one more run per fold (another seed or recipe,
                         holding out the same pairs): the mean of the two runs' outputs, and
                         the same with each `--levels W`. What an ensemble of the two would
                         give, so whether distilling one into a single network could pay.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python benchmarks/crossval.py`: import from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (SUBSET, add_data_option, data_folder, fixed_lut_method, harm_count,  # noqa: E402
                               model_method, results_table, select_pairs)
from benchmarks.cv_sweep import choose_on_other_folds  # noqa: E402
from dpe_hf.baselines import auto_levels, identity  # noqa: E402
from dpe_hf.evaluation import evaluate_pairs, mean_scores  # noqa: E402

def _run_config(run: Path) -> dict | None:
    """The config.yaml of a run folder, or of the run whose `generator/` folder `run` is."""
    import yaml

    for folder in (run, run.parent if run.name == "generator" else None):
        if folder is not None and (folder / "config.yaml").is_file():
            return yaml.safe_load((folder / "config.yaml").read_text()) or {}
    return None


def _trained_ids(config: dict, seen: frozenset = frozenset()) -> set[str]:
    """The fivek-dev pairs a run learnt from: its own data.ids and, for a fine-tune (a GAN
    stage has none of its own), those of every run it started from (model.init_from,
    model.inverse_init_from)."""
    ids = set((config.get("data") or {}).get("ids") or [])
    model = config.get("model") or {}
    for start in (model.get("init_from"), model.get("inverse_init_from")):
        if start and start not in seen:
            started = _run_config(Path(start))
            if started is not None:
                ids |= _trained_ids(started, seen | {start})
    return ids


def read_fold(parser, run: Path) -> tuple[list[str], list[str]]:
    """(trained-on ids, held-out ids) from the run's config.yaml (and those of the runs it
    started from)."""
    import yaml

    path = run / "config.yaml"
    if not path.is_file():
        parser.error(f"{run}: no config.yaml (not a training run folder)")
    config = yaml.safe_load(path.read_text()) or {}
    data = config.get("data") or {}
    own, held_out = list(data.get("ids") or []), list(data.get("val_ids") or [])
    trained = own + sorted(_trained_ids(config) - set(own))
    if not trained or not held_out:
        parser.error(f"{path}: data.val_ids and data.ids (its own or those of the run in model.init_from) "
                     "must both list fivek-dev pairs")
    leaked = sorted(set(trained) & set(held_out))
    if leaked:
        parser.error(f"{path}: trained on pairs it holds out: {', '.join(leaked)}")
    return trained, held_out


def fold_methods(parser, data: Path, run: Path, trained: list[str], model_folder: str,
                 auto_exposure: bool = False, levels: tuple[float, ...] = (), partner: Path | None = None) -> dict:
    model = model_method(str(run / model_folder))
    methods = {"identity": identity, "auto-levels": auto_levels,
               "fixed LUT": fixed_lut_method(select_pairs(parser, data / SUBSET, ",".join(trained))),
               "model": model}
    if auto_exposure:
        methods["model + auto exposure"] = functools.partial(model, auto_exposure=True)
    for weight in levels:
        methods[_levels_name(weight)] = functools.partial(model, levels=weight)
    if partner is not None:
        pair = (model, model_method(str(partner / model_folder)))
        methods[AVERAGED] = functools.partial(_averaged, pair)
        for weight in levels:
            methods[_levels_name(weight, AVERAGED)] = functools.partial(_averaged, pair, levels=weight)
    return methods


AVERAGED = "runs averaged"


def _levels_name(weight: float, name: str = "model") -> str:
    return f"{name} + levels {weight:g}"


def _averaged(models, image, **options):
    """The mean of the models' outputs for `image`, as float32 in [0, 1]."""
    from dpe_hf.imageio import to_float32

    return sum(to_float32(model(image, **options)) for model in models) / len(models)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", type=Path, required=True, metavar="RUN",
                        help="training run folders, one per fold")
    add_data_option(parser)
    parser.add_argument("--model-folder", default="generator",
                        help="the model's folder in each run (generator_online: the last weights of a run "
                             "that published its weight average, ema_decay)")
    parser.add_argument("--levels", type=float, nargs="+", default=[], metavar="W",
                        help="also score each fold's model with W of auto-levels mixed in (dpe enhance --levels); "
                             "with several W, also the W chosen on the other folds (0 among them), fold by fold")
    parser.add_argument("--auto-exposure", action="store_true",
                        help="also score each fold's model with every photo re-exposed first")
    parser.add_argument("--average-with", nargs="+", type=Path, default=[], metavar="RUN",
                        help="one more run per fold, in the order of --runs and holding out the same pairs: "
                             "also score the mean of each fold's two runs' outputs")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    data = data_folder(parser, args.data)
    folds = [(run, *read_fold(parser, run)) for run in args.runs]
    partners = _partners(parser, args.average_with, folds)
    seen: dict[str, Path] = {}
    for run, _, held_out in folds:
        for stem in held_out:
            if stem in seen:
                parser.error(f"{stem} is held out by both {seen[stem]} and {run}")
            seen[stem] = run
    from dpe_hf.errors import ModelLoadError

    per_pair: dict[str, list] = {}  # every held-out pair's scores, method by method, fold after fold
    failed = []
    for (run, trained, held_out), partner in zip(folds, partners):
        pairs = select_pairs(parser, data / SUBSET, ",".join(held_out))
        try:
            methods = fold_methods(parser, data, run, trained, args.model_folder, args.auto_exposure, args.levels,
                                   partner)
        except ModelLoadError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        for name, method in methods.items():
            result = evaluate_pairs(pairs, method, on_error=lambda m: print(f"error: {m}", file=sys.stderr))
            failed += result.failed
            per_pair.setdefault(name, []).extend({**row, "fold": str(run)} for row in result.rows)

    def fold_psnr(name: str, run: Path) -> float:
        scores = mean_scores([row for row in per_pair[name] if row["fold"] == str(run)])
        return scores["psnr"] if scores else float("nan")

    rows = [{"name": name, **(mean_scores(per_pair[name]) or {}),
             **{f"fold{i}": fold_psnr(name, run) for i, (run, _, _) in enumerate(folds, 1)},
             "harm": harm_count(per_pair[name], per_pair["identity"])}
            for name in per_pair]
    chosen = choose_on_other_folds([{"variant": name, "per_pair": per_pair[name]}
                                    for name in ("model", *map(_levels_name, args.levels))]) if len(args.levels) > 1 else []
    if args.json:
        print(json.dumps({"folds": [{"run": str(run), "trained": trained, "held_out": held_out}
                                    for run, trained, held_out in folds],
                          "methods": rows, "per_pair": per_pair, "levels_chosen": chosen, "failed": failed}, indent=2))
    else:
        print(f"{SUBSET}: {len(seen)} pairs in {len(folds)} folds, each scored by the fold that held it out;"
              " scores pooled over the pairs, then each fold's PSNR, then the pairs harmed (> 1 dB below the input)")
        print(results_table(rows, extra=[(f"fold{i}", f"fold {i} ({len(held)})", 2)
                                         for i, (_, _, held) in enumerate(folds, 1)]))
        if chosen:
            pooled = sum(c["psnr"] * c["scores"] for c in chosen) / sum(c["scores"] for c in chosen)
            print("levels chosen on the other folds: " + "; ".join(
                f"{c['fold']}: {c['chosen']} -> {c['psnr']:.2f} dB" for c in chosen) + f"; pooled {pooled:.2f} dB")
    return 1 if failed else 0


def _partners(parser, average_with: list[Path], folds) -> list[Path | None]:
    """The `--average-with` run of each fold (None for all without it): one per fold, holding
    out the same pairs and training on none of them."""
    if not average_with:
        return [None] * len(folds)
    if len(average_with) != len(folds):
        parser.error(f"--average-with needs one run per fold: {len(folds)} runs, got {len(average_with)}")
    for partner, (run, _, held_out) in zip(average_with, folds):
        if sorted(read_fold(parser, partner)[1]) != sorted(held_out):
            parser.error(f"{partner} holds out other pairs than {run}")
    return list(average_with)


if __name__ == "__main__":
    sys.exit(main())
