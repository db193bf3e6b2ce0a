"""benchmarks/cv_sweep.py's cross-validated choice of recipe: each fold is scored with the variant
that the other folds chose, never with the one it would pick for itself."""

from __future__ import annotations

import pytest

from benchmarks.cv_sweep import choose_on_other_folds


def _rows(psnr_by_variant_and_fold: dict[str, dict[int, list[float]]], seeds: int = 1) -> list[dict]:
    return [{"variant": variant, "seed": seed,
             "per_pair": [{"fold": f"/runs/{variant}/s{seed}/fold{k}", "psnr": p} for k, psnrs in by_fold.items()
                          for p in psnrs]}
            for variant, by_fold in psnr_by_variant_and_fold.items() for seed in range(seeds)]


def test_each_fold_gets_the_variant_the_other_folds_chose():
    # "lucky" is best only on fold 3; "steady" is best on folds 1 and 2 (pooled over their pairs)
    rows = _rows({"steady": {1: [23.0, 22.0], 2: [24.0, 23.0], 3: [20.0, 20.0]},
                  "lucky": {1: [21.0, 21.0], 2: [22.0, 22.0], 3: [28.0, 28.0]}})
    nested = choose_on_other_folds(rows)
    assert [n["fold"] for n in nested] == ["fold1", "fold2", "fold3"]
    # fold 1: on folds 2 and 3, steady averages 21.75 and lucky 25.0: lucky
    assert nested[0]["chosen"] == "lucky" and nested[0]["psnr"] == pytest.approx(21.0)
    assert nested[1]["chosen"] == "lucky" and nested[1]["psnr"] == pytest.approx(22.0)
    # fold 3: elsewhere steady 23.0 vs lucky 21.5: steady, which scores 20 where lucky would have scored 28
    assert nested[2]["chosen"] == "steady" and nested[2]["psnr"] == pytest.approx(20.0)
    assert [n["scores"] for n in nested] == [2, 2, 2]


def test_seeds_are_pooled_and_one_variant_is_its_own_choice():
    rows = _rows({"only": {1: [20.0], 2: [21.0], 3: [22.0]}}, seeds=3)
    nested = choose_on_other_folds(rows)
    assert [(n["chosen"], n["psnr"], n["scores"]) for n in nested] == [("only", 20.0, 3), ("only", 21.0, 3),
                                                                         ("only", 22.0, 3)]
