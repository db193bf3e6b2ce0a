"""benchmarks/colour_cast.py: the cast it applies, and the transfer it reports for methods whose
answer is known: 1 for the identity, 0 for a grey-world balance, 2 for one that doubles it."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks import colour_cast
from dpe_hf.data.generated import generated_photo
from dpe_hf.imageio import from_float, to_float32
from dpe_hf.ops.color import linear_to_srgb, srgb_to_linear


def _linear_scaled(image: np.ndarray, gains) -> np.ndarray:
    """`image` with each channel's linear light times `gains` (per image), as float sRGB."""
    x = srgb_to_linear(torch.from_numpy(to_float32(image)).permute(2, 0, 1).double())
    y = x * torch.as_tensor(gains, dtype=torch.float64)[:, None, None]
    return linear_to_srgb(y.clamp(0, 1)).permute(1, 2, 0).numpy()


def grey_world(image: np.ndarray) -> np.ndarray:
    means = srgb_to_linear(torch.from_numpy(to_float32(image)).permute(2, 0, 1).double()).mean(dim=(1, 2))
    return _linear_scaled(image, (means[1] / means).tolist())


def doubled(image: np.ndarray) -> np.ndarray:
    means = srgb_to_linear(torch.from_numpy(to_float32(image)).permute(2, 0, 1).double()).mean(dim=(1, 2))
    return _linear_scaled(image, (means / means[1]).tolist())


@pytest.fixture
def photo() -> np.ndarray:
    # mid-tones only, so that neither the cast nor the methods clip
    return from_float(0.25 + 0.4 * to_float32(generated_photo((48, 64), 1)))


def test_the_cast_is_a_white_balance_gain_in_linear_light():
    grey = np.full((4, 4, 3), 118, np.uint8)
    np.testing.assert_allclose(colour_cast.balance(grey), [0, 0], atol=1e-9)
    warm = colour_cast.with_cast(grey, 0.2)
    # 8-bit rounding of the cast copy: within a hundredth of the log gain
    np.testing.assert_allclose(colour_cast.balance(warm), [0.2, -0.2], atol=0.01)


@pytest.mark.parametrize("method, expected", [(lambda x: x, 1.0), (grey_world, 0.0), (doubled, 2.0)])
def test_transfer_is_the_share_of_the_cast_that_survives(photo, method, expected):
    for cast in (0.2, -0.2):
        cast_photo = colour_cast.with_cast(photo, cast)
        shift_in = colour_cast.balance(cast_photo) - colour_cast.balance(photo)
        assert colour_cast.transfer(shift_in, method(photo), method(cast_photo)) == pytest.approx(expected, abs=0.03)


def test_the_table_counts_amplified_photos(tmp_path, photo, capsys):
    for sub in ("input", "expertC"):
        (tmp_path / "fivek-dev" / sub).mkdir(parents=True)
    for stem in ("a0001", "a0002"):
        for sub in ("input", "expertC"):
            Image.fromarray(photo).save(tmp_path / "fivek-dev" / sub / f"{stem}.png")
    assert colour_cast.main(["--data", str(tmp_path), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["methods"]}
    assert rows["identity"]["warm"] == pytest.approx(1.0, abs=0.02) and rows["identity"]["amplified"] == 0
    assert rows["auto-levels"]["cool"] < 0.5 and rows["identity"]["photos"] == 2
    assert colour_cast.main(["--data", str(tmp_path), "--model", str(tmp_path / "nothing")]) == 2
