"""Training presets (`--preset paired|unpaired`): precedence, missing folders, the paired
hold-out, the progress output, and a tiny end-to-end run of each preset whose result
`dpe enhance --model RUN_DIR` uses."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from accelerate.state import AcceleratorState
from PIL import Image

from dpe_hf import DPEGenerator
from dpe_hf.cli import main as dpe_main
from dpe_hf.data.generated import generated_photo
from dpe_hf.hub import bundled_models, load_generator
from dpe_hf.training import presets
from dpe_hf.training.cli import build_parser, config_from_args
from dpe_hf.training.cli import main as train_main
from dpe_hf.training.config import build_config
from dpe_hf.training.data import holdout_ids, paired_dataset
from dpe_hf.training.progress import Progress, interactive

TINY = ["--set", "steps=2", "--set", "batch_size=1", "--set", "data.crop=32", "--set", "data.max_side=64",
        "--set", "log_every=1", "--set", "save_every=0"]


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


@pytest.fixture
def photos(tmp_path):
    """Folders of small generated photos: expert/ (the photos), input/ (the same, darker),
    source/ and target/ (the input and expert photos, for unpaired training)."""

    def write(folder: str, images: list[np.ndarray]) -> Path:
        (tmp_path / folder).mkdir()
        for i, image in enumerate(images):
            Image.fromarray(image).save(tmp_path / folder / f"p{i:02d}.png")
        return tmp_path / folder

    clean = [generated_photo((48, 64), seed) for seed in range(8)]
    dark = [(image.astype(np.float32) * 0.6).astype(np.uint8) for image in clean]
    return {"expert": write("expert", clean), "input": write("input", dark),
            "source": write("source", dark[:4]), "target": write("target", clean[4:])}


def config_for(argv):
    return config_from_args(build_parser().parse_args(argv))


# -- the preset files -------------------------------------------------------------------------------


@pytest.mark.parametrize("name, mode", [("paired", "supervised"), ("unpaired", "gan2way")])
def test_preset_files_are_valid_configs_that_start_from_the_bundled_model(name, mode):
    config = build_config(presets.read_preset(name))
    assert config.mode == mode
    assert config.model.init_from == "dpe-expertC"
    bundled = json.loads((bundled_models()["dpe-expertC"] / "config.json").read_text())
    assert config.model.width == bundled["width"]  # init_from needs the same width


def test_precedence_preset_then_config_then_set(tmp_path, photos):
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("lr: 0.5\nsteps: 7\n")
    config = config_for(["--preset", "unpaired", "--config", str(recipe), "--set", "steps=3",
                         "--source", str(photos["source"]), "--target", str(photos["target"])])
    assert config.lr == 0.5  # the config file over the preset (5e-6)
    assert config.steps == 3  # --set over the config file
    assert (config.data.crop, config.gan.n_critic) == (128, 5)  # the preset where nothing else says
    assert config.data.source == [str(photos["source"])]


@pytest.mark.parametrize("argv, missing", [
    (["--preset", "unpaired"], "--source DIR"),
    (["--preset", "unpaired", "--source", "a"], "--target DIR"),
    (["--preset", "paired", "--expert", "b"], "--input DIR"),
    (["--preset", "paired", "--input", "a"], "--expert DIR"),
])
def test_a_missing_folder_is_one_line_naming_the_flag(argv, missing, capsys):
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --preset") and missing in err


def test_a_config_file_may_give_the_folders_instead_of_flags(tmp_path, photos):
    recipe = tmp_path / "mine.yaml"
    recipe.write_text(f"data:\n  input: {photos['input']}\n  expert: {photos['expert']}\n")
    assert config_for(["--preset", "paired", "--config", str(recipe)]).data.input == str(photos["input"])


# -- validation pairs held out of a paired folder -----------------------------------------------------


@pytest.mark.parametrize("n, held", [(3, []), (4, ["i3"]), (8, ["i7"]), (14, ["i07"]), (16, ["i07", "i15"])])
def test_holdout_is_every_8th_pair_and_one_from_4_pairs(n, held):
    ids = [f"i{k:02d}" if n > 9 else f"i{k}" for k in range(n)]
    assert sorted(holdout_ids(reversed(ids), 8)) == held


def test_held_out_pairs_are_not_trained_on(photos):
    data = {"input": str(photos["input"]), "expert": str(photos["expert"]), "val_holdout": 8}
    config = build_config({"data": data})
    train, val = paired_dataset(config.data)["id"], paired_dataset(config.data, part="val")["id"]
    assert val == ["p07"] and "p07" not in train and len(train) == 7
    with_folders = build_config({"data": {**data, "val_input": "x", "val_expert": "y"}})
    assert len(paired_dataset(with_folders.data)["id"]) == 8  # validation folders: every pair trains


# -- progress ---------------------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_bar_is_for_terminals_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert interactive(Terminal()) and not interactive(io.StringIO())
    monkeypatch.setenv("CI", "true")
    assert not interactive(Terminal())


def test_without_a_terminal_progress_is_a_line_per_log_step(capsys):
    progress = Progress(10, 0, desc="x", enabled=True, stream=io.StringIO())
    progress.update(1)
    progress.update(2, {"loss/mse": 0.25, "lr": 1e-4, "D_Y/grad_norm": 1.0})
    progress.close()
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("step 2/10 (20%) | loss/mse 0.25 |") and "ETA" in out[0]
    assert "lr" not in out[0] and "grad_norm" not in out[0]


# -- end to end -------------------------------------------------------------------------------------


@pytest.fixture
def train():
    """Run train_accelerate.py's main in-process (no interpreter start: seconds, not tens)."""

    def run(argv):
        AcceleratorState._reset_state(True)
        try:
            assert train_main(argv) == 0
        finally:
            AcceleratorState._reset_state(True)

    return run


def enhanced_by(run: Path, photo: Path, out: Path) -> np.ndarray:
    assert dpe_main(["enhance", str(photo), "-o", str(out), "--model", str(run)]) == 0
    return np.asarray(Image.open(out / f"{photo.stem}_enhanced.png"))


def test_paired_preset_end_to_end(tmp_path, photos, train, capsys):
    run = tmp_path / "run"
    train(["--preset", "paired", "--input", str(photos["input"]), "--expert", str(photos["expert"]),
           "--output-dir", str(run), *TINY, "--set", "val_every=2"])
    out = capsys.readouterr().out
    assert "step 2/2 (100%)" in out and "ETA" in out  # stdout is not a terminal: lines, no bar
    assert isinstance(load_generator(run), DPEGenerator)
    logged = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert any("val/psnr" in row for row in logged)  # scored on the held-out pair
    assert enhanced_by(run, photos["input"] / "p00.png", tmp_path / "out").shape == (48, 64, 3)


def test_unpaired_preset_end_to_end(tmp_path, photos, train):
    run = tmp_path / "run"
    train(["--preset", "unpaired", "--source", str(photos["source"]), "--target", str(photos["target"]),
           "--output-dir", str(run), *TINY, "--set", "gan.image_every=0"])
    generator = load_generator(run)
    assert isinstance(generator, DPEGenerator) and generator.individual_bn
    assert (run / "generator_inverse" / "config.json").is_file()
    assert enhanced_by(run, photos["source"] / "p00.png", tmp_path / "out").shape == (48, 64, 3)
