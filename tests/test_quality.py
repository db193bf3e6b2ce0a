"""Exposure consistency (dpe_hf.evaluation) on synthetic scenes, and benchmarks/quality.py end to
end on a generated data folder shaped like ../shared/data (the tests never read that folder)."""

import importlib
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpe_hf.data.generated import generated_photo
from dpe_hf.evaluation import exposure_consistency
from helpers import REPO

GAINS = (0.4, 0.6, 0.8, 1.0)  # the exposures of a scene: one photo, scaled


def exposures(folder: Path, scene: str, seed: int, size=(48, 64), gains=GAINS) -> list[Path]:
    """`<scene>_<k>_.png`: one generated photo at each gain (darkest first)."""
    folder.mkdir(parents=True, exist_ok=True)
    photo = generated_photo(size, seed).astype(np.float32)
    paths = []
    for k, gain in enumerate(gains):
        path = folder / f"{scene}_{k}_.png"
        Image.fromarray(np.clip(photo * gain + 0.5, 0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def same_mean_brightness(image: np.ndarray) -> np.ndarray:
    """Undoes a global gain: scales the image to mean 0.4."""
    x = image.astype(np.float32) / 255
    return np.clip(x * (0.4 / max(float(x.mean()), 1e-6)), 0, 1)


def test_identical_exposures_score_inf(tmp_path):
    paths = exposures(tmp_path, "s", 0, gains=(0.7, 0.7, 0.7))
    assert exposure_consistency({"s": paths})["mean"] == math.inf


def test_a_method_that_undoes_the_exposure_scores_higher_than_identity(tmp_path):
    scenes = {s: exposures(tmp_path, s, seed) for seed, s in enumerate(("a", "b"))}
    identity = exposure_consistency(scenes)
    normalised = exposure_consistency(scenes, same_mean_brightness)
    assert set(identity["per_scene"]) == {"a", "b"}
    assert normalised["mean"] > identity["mean"] + 10
    assert identity["mean"] == pytest.approx(sum(identity["per_scene"].values()) / 2)


def test_exposures_saved_at_different_sizes_are_compared_at_one_size(tmp_path):
    paths = exposures(tmp_path, "s", 0, size=(60, 80), gains=(1.0, 1.0))
    Image.open(paths[1]).resize((40, 30)).save(paths[1])  # the same view, smaller
    score = exposure_consistency({"s": paths}, long_side=32)["mean"]
    assert 25 < score < math.inf


def test_a_scene_needs_two_exposures(tmp_path):
    with pytest.raises(ValueError, match="scene 's'"):
        exposure_consistency({"s": exposures(tmp_path, "s", 0, gains=(1.0,))})


# -- benchmarks/quality.py --------------------------------------------------------------------------


def load_benchmark(name: str):
    """benchmarks/NAME.py, imported from the benchmarks package."""
    return importlib.import_module(f"benchmarks.{name}")


@pytest.fixture(scope="module")
def quality():
    return load_benchmark("quality")


@pytest.fixture
def data(tmp_path):
    """DATA/fivek-dev/{input,expertC} with 3 pairs and DATA/fullres/sice-scenes with 2 scenes."""
    root = tmp_path / "data"
    for sub in ("input", "expertC"):
        (root / "fivek-dev" / sub).mkdir(parents=True)
    for i, stem in enumerate(("a0001", "a0002", "a0003")):
        photo = generated_photo((40, 56), i)
        Image.fromarray(photo).save(root / "fivek-dev" / "expertC" / f"{stem}.png")
        Image.fromarray((photo * 0.7).astype(np.uint8)).save(root / "fivek-dev" / "input" / f"{stem}.png")
    scenes = root / "fullres" / "sice-scenes"
    scenes.mkdir(parents=True)
    for seed, scene in enumerate(("10", "2")):
        for k, path in enumerate(exposures(tmp_path / "png", scene, seed, size=(32, 40))):
            Image.open(path).save(scenes / f"{scene}_{k}_.jpg", quality=95)
    # SICE part 1 as numbered files: a near-black frame, then one scene's 4 exposures, then another's
    sequences = root / "source" / "sice-part1"
    sequences.mkdir(parents=True)
    frames = [*exposures(tmp_path / "seq", "a", 2, gains=(0.02, *GAINS)), *exposures(tmp_path / "seq", "b", 3)]
    for number, path in enumerate(frames, 1):
        frame = Image.open(path)
        # generated photos share their layout (light top left): turn the second scene round
        (frame if number <= 5 else frame.transpose(Image.Transpose.ROTATE_180)).save(sequences / f"{number}.jpg",
                                                                                     quality=95)
    return root


def test_sice_scenes_groups_exposures_darkest_first(quality, data):
    scenes = quality.sice_scenes(data / "fullres" / "sice-scenes")
    assert list(scenes) == ["10", "2"]
    assert [p.name for p in scenes["2"]] == ["2_0_.jpg", "2_1_.jpg", "2_2_.jpg", "2_3_.jpg"]


def test_quality_json_has_the_exposure_score_and_the_sheets_are_drawn(quality, data, tmp_path, capsys):
    sheet, failures = tmp_path / "sheet.png", tmp_path / "failures.png"
    code = quality.main(["--data", str(data), "--model", "dpe-expertC", "--ids", "a0001,a0003", "--json",
                         "--contact-sheet", str(sheet), "--failures", "1", "--failures-sheet", str(failures)])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ids"] == ["a0001", "a0003"]
    names = [row["name"] for row in result["methods"]]
    assert names == ["identity", "auto-levels", "PIL autocontrast", "dpe-expertC"]
    assert all(row["expo_psnr"] > 0 and set(row["expo_per_scene"]) == {"10", "2"} for row in result["methods"])
    # the identity's mean level on the scenes is that of the scene files themselves
    scenes = sorted((data / "fullres" / "sice-scenes").glob("*.jpg"))
    level = np.mean([np.asarray(Image.open(p), dtype=np.float64).mean() / 255 for p in scenes])
    assert result["methods"][0]["expo_level"] == pytest.approx(level, abs=1e-6)
    assert all(0 < row["expo_level"] < 1 for row in result["methods"])
    # rows: a label strip and a 256 px row per pair; columns: input | dpe-expertC | expert C
    assert Image.open(sheet).height > 2 * 256 and Image.open(failures).height < 2 * 256
    assert Image.open(sheet).width > 3 * 256 * 56 / 40


def test_quality_table_has_the_previous_bundled_model(quality, data, capsys):
    tracked = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", "HEAD:checkpoints/dpe-expertC/config.json"],
                             capture_output=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout with the bundled model committed")
    assert quality.main(["--data", str(data), "--previous", "HEAD", "--no-exposure"]) == 0
    out = capsys.readouterr().out
    assert "dpe-expertC @HEAD" in out and "expo PSNR" not in out
    assert quality.main(["--data", str(data), "--previous", "no-such-rev"]) == 2
    assert "--previous no-such-rev" in capsys.readouterr().err


def test_exposure_bracket_is_a_linear_light_gain(tmp_path):
    common = load_benchmark("common")
    path = tmp_path / "p.png"
    photo = generated_photo((32, 40), 5)
    Image.fromarray(photo).save(path)
    assert np.array_equal(common.exposure_bracket(path, 0.0), photo)
    # hand-computed: sRGB decode, half the light, sRGB encode (IEC 61966-2-1)
    x = photo.astype(np.float64) / 255
    linear = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4) / 2
    expect = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    got = common.exposure_bracket(path, -1.0).astype(np.float64) / 255
    assert np.abs(got - expect).max() <= 1 / 255 + 1e-6


# -- benchmarks/error_split.py ----------------------------------------------------------------------


def test_error_split_affine_map_recovers_a_global_gain(data, capsys):
    module = load_benchmark("error_split")
    # the fixture's inputs are expert C times 0.7 (rounded down): one affine map per channel
    # undoes it up to rounding, so the fitted PSNR of the input must be far above the plain one
    assert module.main(["--data", str(data), "--ids", "a0001,a0002"]) == 0
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines()[2:]]
    identity = {cells[1].strip(" *"): (float(cells[2].strip(" *")), float(cells[3].strip(" *")))
                for cells in rows if cells[0].strip(" *") == "identity"}
    assert set(identity) == {"a0001", "a0002", "mean of 2"}
    plain, fitted = identity["a0001"]
    assert plain < 25 and fitted > 45
    assert [cells[0].strip(" *") for cells in rows].count("dpe-expertC") == 3
    gain = np.full((4, 4, 3), 0.5, np.float32)
    np.testing.assert_allclose(module.best_affine_per_channel(gain * [0.2, 0.4, 0.8], gain), gain, atol=1e-6)
    # a LUT learnt from two pairs undoes the same gain on the third
    assert module.main(["--data", str(data), "--ids", "a0003", "--lut-from", "a0001,a0002"]) == 0
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines()[2:]]
    plain = {cells[0].strip(" *"): float(cells[2].strip(" *")) for cells in rows if "mean of" in cells[1]}
    assert plain["fixed LUT"] > plain["identity"] + 10


# -- benchmarks/crossval.py -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crossval():
    return load_benchmark("crossval")


def training_run(folder: Path, trained: list[str], held_out: list[str]) -> Path:
    """A run folder as train_accelerate.py leaves it: config.yaml and the generator (here the bundled one)."""
    import shutil

    import yaml

    shutil.copytree(REPO / "checkpoints" / "dpe-expertC", folder / "generator")
    (folder / "config.yaml").write_text(yaml.safe_dump({"data": {"ids": trained, "val_ids": held_out}}))
    return folder


def test_crossval_pools_each_pair_scored_by_the_fold_that_held_it_out(crossval, quality, data, tmp_path, capsys):
    first = training_run(tmp_path / "f1", ["a0001", "a0002"], ["a0003"])
    second = training_run(tmp_path / "f2", ["a0002", "a0003"], ["a0001"])
    assert crossval.main(["--data", str(data), "--runs", str(first), str(second), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = {row["name"]: row for row in result["methods"]}
    assert [p["name"] for p in result["per_pair"]["model"]] == ["a0003", "a0001"]
    # the pooled identity and model scores are quality.py's over the same two pairs
    assert quality.main(["--data", str(data), "--ids", "a0001,a0003", "--model", "dpe-expertC", "--json",
                         "--no-exposure"]) == 0
    direct = {row["name"]: row for row in json.loads(capsys.readouterr().out)["methods"]}
    for name, same in (("identity", "identity"), ("model", "dpe-expertC")):
        for key in ("psnr", "ssim", "delta_e"):
            assert rows[name][key] == pytest.approx(direct[same][key], rel=1e-9)
    assert rows["identity"]["fold1"] != rows["identity"]["fold2"]
    # the inputs are expert C times 0.7: a LUT fitted to the other pairs undoes that
    assert rows["fixed LUT"]["psnr"] > rows["identity"]["psnr"] + 10


def test_crossval_refuses_folds_that_leak_or_overlap(crossval, data, tmp_path, capsys):
    leaky = training_run(tmp_path / "leaky", ["a0001", "a0003"], ["a0003"])
    with pytest.raises(SystemExit) as exit_info:
        crossval.main(["--data", str(data), "--runs", str(leaky)])
    assert exit_info.value.code == 2 and "trained on pairs it holds out: a0003" in capsys.readouterr().err
    first = training_run(tmp_path / "f1", ["a0001"], ["a0003"])
    second = training_run(tmp_path / "f2", ["a0002"], ["a0003"])
    with pytest.raises(SystemExit):
        crossval.main(["--data", str(data), "--runs", str(first), str(second)])
    assert "a0003 is held out by both" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        crossval.main(["--data", str(data), "--runs", str(tmp_path)])
    assert "no config.yaml" in capsys.readouterr().err


def test_crossval_counts_a_fine_tunes_pairs_from_the_run_it_started_from(crossval, data, tmp_path, capsys):
    import yaml

    start = training_run(tmp_path / "start", ["a0001", "a0002"], ["a0003"])

    def fine_tune(name: str, held_out: list[str], init_from: Path) -> Path:
        # a GAN stage: no pairs of its own, started from another run's generator
        run = training_run(tmp_path / name, [], held_out)
        (run / "config.yaml").write_text(yaml.safe_dump(
            {"data": {"ids": None, "val_ids": held_out}, "model": {"init_from": str(init_from)}}))
        return run

    assert crossval.main(["--data", str(data), "--runs", str(fine_tune("gan", ["a0003"], start / "generator")),
                          "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in result["per_pair"]["model"]] == ["a0003"]
    # holding out a pair that its start trained on is a leak, two starts away as well
    second = fine_tune("gan2", ["a0001"], fine_tune("gan1", ["a0003"], start))
    with pytest.raises(SystemExit) as exit_info:
        crossval.main(["--data", str(data), "--runs", str(second)])
    assert exit_info.value.code == 2 and "trained on pairs it holds out: a0001" in capsys.readouterr().err
    # a start that is not a run (a bundled model) says nothing about pairs: refused
    with pytest.raises(SystemExit):
        crossval.main(["--data", str(data), "--runs", str(fine_tune("gan3", ["a0003"], Path("dpe-expertC")))])
    assert "data.val_ids and data.ids" in capsys.readouterr().err


def test_crossval_scores_the_model_folder_it_is_given(crossval, data, tmp_path, capsys):
    import shutil

    first = training_run(tmp_path / "f1", ["a0001", "a0002"], ["a0003"])
    shutil.copytree(REPO / "checkpoints" / "dpe-expertC-lowlight", first / "generator_online")
    scores = {}
    for folder in ("generator", "generator_online"):
        assert crossval.main(["--data", str(data), "--runs", str(first), "--model-folder", folder, "--json"]) == 0
        scores[folder] = next(m for m in json.loads(capsys.readouterr().out)["methods"] if m["name"] == "model")
    assert scores["generator"]["psnr"] != scores["generator_online"]["psnr"]


def test_crossval_averages_each_folds_two_runs(crossval, data, tmp_path, capsys):
    import shutil

    from dpe_hf.evaluation import score_arrays
    from dpe_hf.hub import load_generator
    from dpe_hf.imageio import read_image, to_float32
    from dpe_hf.inference import enhance

    run = training_run(tmp_path / "f1", ["a0001", "a0002"], ["a0003"])
    partner = training_run(tmp_path / "p1", ["a0001"], ["a0003"])
    shutil.rmtree(partner / "generator")
    shutil.copytree(REPO / "checkpoints" / "dpe-expertC-lowlight", partner / "generator")
    assert crossval.main(["--data", str(data), "--runs", str(run), "--average-with", str(partner),
                          "--levels", "0.5", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["methods"]}
    photo, expert = (read_image(data / "fivek-dev" / sub / "a0003.png")[0] for sub in ("input", "expertC"))
    models = [load_generator(str(r / "generator")) for r in (run, partner)]
    for name, options in (("runs averaged", {}), ("runs averaged + levels 0.5", {"levels": 0.5})):
        outputs = [to_float32(enhance(model, photo, **options)) for model in models]
        assert rows[name]["psnr"] == pytest.approx(score_arrays((outputs[0] + outputs[1]) / 2, expert)["psnr"])
    assert rows["runs averaged"]["psnr"] != pytest.approx(rows["model"]["psnr"])
    # one partner per fold, holding out the same pairs and never training on them
    for partners, message in (([partner, partner], "one run per fold"),
                              ([training_run(tmp_path / "p2", ["a0003"], ["a0001"])], "other pairs than"),
                              ([training_run(tmp_path / "p3", ["a0003"], ["a0003"])], "holds out: a0003")):
        with pytest.raises(SystemExit):
            crossval.main(["--data", str(data), "--runs", str(run), "--average-with", *map(str, partners)])
        assert message in capsys.readouterr().err


def test_cv_sweep_plans_every_variant_seed_and_fold_without_leaks(data, tmp_path):
    sweep = load_benchmark("cv_sweep")
    folds = sweep.fold_ids(data)
    assert [held for _, held in folds] == [["a0001"], ["a0002"], ["a0003"]]  # every third id from the k-th
    for trained, held in folds:
        assert sorted(trained + held) == ["a0001", "a0002", "a0003"] and not set(trained) & set(held)
    args = sweep.argparse.Namespace(data=data, set=["ema_decay=0.9"])
    command = sweep.run_command(args, tmp_path / "run", 3, ["steps=20"], *folds[1])
    flags = [command[i + 1] for i, x in enumerate(command) if x == "--set"]
    assert flags == ["seed=3", "data.ids=[a0001,a0003]", "data.val_ids=[a0002]", "ema_decay=0.9", "steps=20"]
    assert "--resume" in command  # a sweep stopped at its deadline goes on when run again


def test_paired_look_is_the_documented_edit_and_pairs_are_laid_out_for_the_preset(tmp_path):
    look = load_benchmark("paired_look")
    # grey stays grey: 0.06 + 0.9 * v, then gains 1.06 / 1 / 0.9
    grey = np.full((1, 1, 3), 200, np.uint8)
    v = 0.06 + 0.9 * 200 / 255
    assert look.your_look(grey)[0, 0].tolist() == [round(v * 1.06 * 255), round(v * 255), round(v * 0.9 * 255)]
    red = np.array([[[255, 0, 0]]], np.uint8)  # saturation scaled by 0.75 around the grey mean
    r, g = 85 + 0.75 * 170, 85 - 0.75 * 85
    assert look.your_look(red)[0, 0, :2].tolist() == [round(min(1, (0.06 + 0.9 * r / 255) * 1.06) * 255),
                                                      round((0.06 + 0.9 * g / 255) * 255)]
    data = tmp_path / "data"
    for sub in ("input", "expertC"):
        (data / "fivek-dev" / sub).mkdir(parents=True)
    for i, stem in enumerate(look.TRAIN[:2] + look.HELD_OUT[:1]):
        photo = generated_photo((24, 32), i)
        Image.fromarray(photo).save(data / "fivek-dev" / "expertC" / f"{stem}.png")
        Image.fromarray(photo // 2).save(data / "fivek-dev" / "input" / f"{stem}.png")
    look.write_pairs(data, tmp_path / "out")
    assert sorted(p.stem for p in (tmp_path / "out/train/after").iterdir()) == sorted(look.TRAIN[:2])
    after = np.asarray(Image.open(tmp_path / "out/fivek-dev/expertC" / f"{look.HELD_OUT[0]}.png"))
    expert = np.asarray(Image.open(data / "fivek-dev/expertC" / f"{look.HELD_OUT[0]}.png"))
    assert np.array_equal(after, look.your_look(expert))


def test_quality_lut_from_adds_expert_cs_average_look(quality, data, capsys):
    assert quality.main(["--data", str(data), "--ids", "a0003", "--lut-from", "a0001,a0002", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["methods"]}
    assert list(rows) == ["identity", "auto-levels", "PIL autocontrast", "fixed LUT"]
    assert rows["fixed LUT"]["psnr"] > rows["identity"]["psnr"] + 10 and "expo_psnr" in rows["fixed LUT"]


def test_quality_tone_from_matches_expert_cs_average_tone_without_the_scored_pairs(quality, data, capsys):
    # retouches without their inputs, named as FiveK's: the one of the scored pair must not count
    retouches = data / "target" / "retouches"
    retouches.mkdir(parents=True)
    for stem in ("a0001", "a0002", "a0003"):
        Image.open(data / "fivek-dev" / "expertC" / f"{stem}.png").save(retouches / f"{stem}-IMG_1.jpg", quality=95)
    assert quality.main(["--data", str(data), "--ids", "a0003", "--tone-from", str(retouches), "--json",
                         "--no-exposure"]) == 0
    out = capsys.readouterr()
    rows = {row["name"]: row for row in json.loads(out.out)["methods"]}
    assert f"tone match: 2 photos of {retouches}" in out.err
    assert rows["tone match"]["psnr"] > rows["identity"]["psnr"] + 3


def test_sice_sequences_split_where_the_scene_changes_and_drop_black_frames(quality, data):
    sequences = quality.sice_sequences(data / "source" / "sice-part1")
    assert {name: [p.name for p in paths] for name, paths in sequences.items()} == {
        "2": ["2.jpg", "3.jpg", "4.jpg", "5.jpg"], "6": ["6.jpg", "7.jpg", "8.jpg", "9.jpg"]}
    assert list(quality.sice_sequences(data / "source" / "sice-part1", count=1)) == ["2"]


def test_quality_auto_exposure_rows_are_more_consistent_across_real_exposures(quality, data, capsys):
    assert quality.main(["--data", str(data), "--model", "dpe-expertC", "--auto-exposure", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["methods"]}
    assert list(rows)[-2:] == ["dpe-expertC", "dpe-expertC + auto exposure"]
    even, plain = rows["dpe-expertC + auto exposure"], rows["dpe-expertC"]
    assert even["seq_psnr"] > plain["seq_psnr"] + 5 and even["seq_psnr"] > rows["identity"]["seq_psnr"] + 5
    assert even["bracket_psnr"] > plain["bracket_psnr"] + 5


# -- the harm count (issue 17) ----------------------------------------------------------------------


def test_harm_count_counts_photos_left_more_than_1_db_below_the_input():
    common = load_benchmark("common")
    inputs = [{"name": "a", "psnr": 20.0}, {"name": "b", "psnr": 20.0}, {"name": "c", "psnr": 30.0},
              {"name": "d", "psnr": 25.0}, {"name": "e", "psnr": 18.0}]
    method = [{"name": "a", "psnr": 19.5},    # 0.5 dB worse: not harmed
              {"name": "b", "psnr": 18.9},    # 1.1 dB worse: harmed
              {"name": "c", "psnr": 28.99},   # 1.01 dB worse: harmed
              {"name": "d", "psnr": 24.0},    # exactly 1 dB worse: not "more than"
              {"name": "e", "psnr": 26.0},    # better
              {"name": "x", "psnr": 1.0}]     # no input score (failed there): not counted
    assert common.harm_count(method, inputs) == "2/5"
    assert common.harm_count(inputs, inputs) == "0/5"
    assert common.harm_count(method, inputs, margin_db=0.4) == "4/5"  # a and d too
    assert common.harm_count([], inputs) == "0/0"


def test_results_table_ends_with_the_harm_column():
    common = load_benchmark("common")
    rows = [{"name": "identity", "psnr": 20.0, "ssim": 0.8, "delta_e": 10.0, "harm": "0/19"},
            {"name": "a longer name", "psnr": 18.0, "ssim": 0.7, "delta_e": 12.0, "harm": "12/19"},
            {"name": "no count", "psnr": 18.0, "ssim": 0.7, "delta_e": 12.0}]
    header, *lines = common.results_table(rows).splitlines()
    assert header.split()[-1] == "harm" and [line.split()[-1] for line in lines[:2]] == ["0/19", "12/19"]
    assert lines[2].rstrip().endswith("12.00") and len({len(line) for line in (header, *lines)}) == 1


def worse(image: np.ndarray) -> np.ndarray:
    """The negative: far from any expert."""
    return 255 - image


def test_quality_counts_the_pairs_each_method_harms(quality, data, monkeypatch, capsys):
    monkeypatch.setattr(quality, "autocontrast", worse)
    args = ["--data", str(data), "--lut-from", "a0001,a0002", "--no-exposure"]
    assert quality.main([*args, "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["methods"]}
    harm = {name: row["harm"] for name, row in rows.items()}
    assert list(harm) == ["identity", "auto-levels", "PIL autocontrast", "fixed LUT"]
    # the negative harms every pair; the inputs are expert C times 0.7, and the LUT fitted to two
    # of them undoes that on all three
    assert harm["identity"] == "0/3" and harm["PIL autocontrast"] == "3/3" and harm["fixed LUT"] == "0/3"
    identity = {r["name"]: r["psnr"] for r in rows["identity"]["per_image"]}
    levels = rows["auto-levels"]["per_image"]
    assert rows["auto-levels"]["harm"] == f"{sum(r['psnr'] < identity[r['name']] - 1 for r in levels)}/3"
    assert quality.main(args) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split()[-1] == "harm"
    assert {line.split()[0]: line.split()[-1] for line in table[2:]}["PIL"] == "3/3"


def test_crossval_counts_the_pairs_each_method_harms(crossval, data, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(crossval, "auto_levels", worse)
    first = training_run(tmp_path / "f1", ["a0001", "a0002"], ["a0003"])
    second = training_run(tmp_path / "f2", ["a0002", "a0003"], ["a0001"])
    runs = ["--data", str(data), "--runs", str(first), str(second)]
    assert crossval.main([*runs, "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["methods"]}
    assert rows["identity"]["harm"] == "0/2" and rows["auto-levels"]["harm"] == "2/2"
    assert rows["fixed LUT"]["harm"] == "0/2"
    assert crossval.main(runs) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split()[-1] == "harm" and table[3].split()[:1] == ["auto-levels"]
    assert table[3].split()[-1] == "2/2"
