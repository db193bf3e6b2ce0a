"""benchmarks/unpaired_shift.py: its statistics and distance against values worked out by hand,
and a clear error for a folder that is not there."""

import numpy as np

from benchmarks import unpaired_shift


def test_photo_statistics_of_flat_photos_are_known():
    grey = np.full((8, 8, 3), 0.05)
    np.testing.assert_allclose(unpaired_shift.photo_statistics(grey), [0.05, 0.0, 0.0, 1.0], atol=1e-12)
    red = np.zeros((8, 8, 3))
    red[..., 0] = 1.0
    # luma 0.299; rg = 1, yb = 0.5 everywhere: colourfulness 0.3 * hypot(1, 0.5)
    np.testing.assert_allclose(unpaired_shift.photo_statistics(red), [0.299, 0.0, 0.3 * np.hypot(1, 0.5), 0.0],
                               atol=1e-12)


def test_frechet_distance_of_axis_aligned_gaussians_is_the_closed_form():
    rng = np.random.default_rng(0)
    # independent columns, so both covariances are (nearly) diagonal: use the exact sample ones
    a = rng.normal([0.0, 1.0], [1.0, 2.0], (4000, 2))
    b = rng.normal([0.5, 1.0], [3.0, 0.5], (4000, 2))
    va, vb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    assert abs(va[0, 1]) < 0.1 and abs(vb[0, 1]) < 0.1
    # for diagonal covariances: |mu_a - mu_b|^2 + sum (sigma_a - sigma_b)^2
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + ((np.sqrt(np.diag(va)) - np.sqrt(np.diag(vb))) ** 2).sum()
    np.testing.assert_allclose(unpaired_shift.frechet_distance(a, b), expected, rtol=0.02)
    assert unpaired_shift.frechet_distance(a, a) < 1e-9


def test_a_missing_folder_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "fivek-dev").mkdir()
    assert unpaired_shift.main(["--data", str(tmp_path), "--target", "target/nowhere"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "target/nowhere: no such folder" in err[0]


def test_a_model_that_does_not_load_is_one_line_and_exit_2(tmp_path, capsys):
    for folder in ("fivek-dev", "target", "fivek-dev/input", "fullres/sice-scenes"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    assert unpaired_shift.main(["--data", str(tmp_path), "--model", str(tmp_path / "no-model")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-model: no such file or folder" in err[0]


def test_an_empty_target_is_one_line_and_exit_2(tmp_path, capsys):
    for folder in ("fivek-dev", "target", "fivek-dev/input", "fullres/sice-scenes"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    assert unpaired_shift.main(["--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--target: no photos in target" in err[0]
