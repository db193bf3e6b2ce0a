"""Full resolution by tiles (`method="tiled"`): the tile layout and its weights, agreement with
an untiled run of the network, no visible seams, any size, and the `dpe enhance` flags."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dpe_hf.cli import main
from dpe_hf.data.generated import generated_photo
from dpe_hf.imageio import read_image
from dpe_hf.hub import load_generator
from dpe_hf.enhancer import Enhancer, tile_geometry
from dpe_hf.inference import enhance, enhance_array
from dpe_hf.models.generator import MULTIPLE, DPEGenerator
from dpe_hf.ops.guided import downscale_long_side
from dpe_hf.ops.tiling import feather_weights, tile_spans


@pytest.fixture(scope="module")
def random_model() -> DPEGenerator:
    torch.manual_seed(0)
    return DPEGenerator(width=0.25, init_scale=None).eval()  # visibly changes photos


@pytest.fixture(scope="module")
def bundled():
    return load_generator("dpe-expertC")


# --------------------------------------------------------------------------------------------
# the layout
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 31, 63, 64, 65, 112, 113, 500])
@pytest.mark.parametrize("tile,overlap", [(64, 32), (64, 0), (96, 16), (1024, 64)])
def test_tiles_cover_the_side_and_weights_sum_to_one(length, tile, overlap):
    spans = tile_spans(length, tile, overlap)
    assert spans[0][0] == 0 and spans[-1][1] == length
    assert all(start % (tile - overlap) == 0 for start, _ in spans)  # on the whole image's grid
    assert all(stop - start <= tile for start, stop in spans)
    assert all(a[1] >= b[0] for a, b in zip(spans, spans[1:]))  # no gap
    total = np.zeros(length)
    for (start, stop), w in zip(spans, feather_weights(spans)):
        assert w.shape == (stop - start,) and (w > 0).all()
        total[start:stop] += w
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_only_neighbours_overlap():
    with pytest.raises(ValueError, match="2 \\* overlap <= tile"):
        tile_spans(100, 64, 40)


def test_tile_geometry_keeps_the_unets_multiple():
    assert tile_geometry(1024, 64, MULTIPLE) == (1024, 64)
    assert tile_geometry(100, 64, MULTIPLE) == (112, 48)  # 112 / 2 = 56, rounded down to 48
    assert tile_geometry(64, 64, MULTIPLE) == (64, 32)
    assert tile_geometry(200, 40, MULTIPLE) == (208, 32)
    for bad in (63, 0, 64.0, True):
        with pytest.raises(ValueError, match="tile"):
            tile_geometry(bad, 64, MULTIPLE)


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------


@torch.inference_mode()
def test_one_tile_is_the_network_on_the_full_photo_with_the_low_copys_look(random_model):
    image = generated_photo((150, 230), seed=1)
    low = downscale_long_side(image, 64)

    def tensor(a):
        return torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255.0

    look = random_model.encode_global(tensor(low))
    direct = random_model(tensor(image), global_feature=look).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    expected = np.round(direct * 255).astype(np.uint8)
    out = enhance_array(random_model, image, method="tiled", tile=256, max_side=64)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(out, expected)
    # and the look is the low copy's, not the full photo's own
    assert not np.array_equal(out, enhance_array(random_model, image, method="guided", max_side=230))


def test_feathered_tiles_leave_no_visible_seams(bundled):
    # Measured with the bundled model (the bound depends on the weights): 64 px tiles overlapping
    # by 32 differ from one whole tile by at most 2 levels here (1 with the weights of 2026-11-27, 2
    # with the two before them; 1 on a 768 x 511 photo with 256 / 64 px tiles); butted tiles
    # (overlap 0) by 7-22 levels along their borders (9 here). 2 levels of 255 are invisible, a
    # seam is not.
    image = generated_photo((150, 230), seed=2)
    whole = enhance_array(bundled, image, method="tiled", tile=1024, max_side=96).astype(int)
    feathered = enhance_array(bundled, image, method="tiled", tile=64, overlap=32, max_side=96)
    butted = enhance_array(bundled, image, method="tiled", tile=64, overlap=0, max_side=96)
    assert np.abs(feathered - whole).max() <= 2
    assert np.abs(butted - whole).max() >= 4  # the check would see a seam


@pytest.mark.parametrize("shape", [(97, 45), (33, 161), (65, 1), (1, 70)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_odd_sizes_keep_their_size(random_model, shape, dtype):
    image = generated_photo(shape, seed=3)
    if dtype == np.uint16:
        image = image.astype(np.uint16) * 257
    out = enhance_array(random_model, image, method="tiled", tile=64, max_side=32)
    assert out.shape == image.shape and out.dtype == dtype
    # strength 0: the blended tiles give the photo back exactly
    assert np.array_equal(enhance_array(random_model, image, method="tiled", tile=64, max_side=32,
                                        strength=0.0), image)


def test_tiled_through_enhance_for_every_image_type(random_model):
    image = generated_photo((80, 100), seed=4)
    expected = enhance(random_model, image, method="tiled", tile=64, max_side=48)
    pil = enhance(random_model, Image.fromarray(image), method="tiled", tile=64, max_side=48)
    assert np.array_equal(np.asarray(pil), expected)
    t = enhance(random_model, torch.from_numpy(image).permute(2, 0, 1).float() / 255, method="tiled",
                tile=64, max_side=48)
    assert t.shape == (3, 80, 100)
    assert np.abs(np.round(t.permute(1, 2, 0).numpy() * 255) - expected).max() <= 1


def test_an_onnx_style_generator_refuses_tiles():
    with pytest.raises(ValueError, match="needs a PyTorch model"):
        Enhancer(lambda x: x, method="tiled")


# --------------------------------------------------------------------------------------------
# dpe enhance --method tiled --tile N
# --------------------------------------------------------------------------------------------


def test_cli_tiled(tmp_path, random_model, capsys):
    model = tmp_path / "model"
    random_model.save_pretrained(model)
    image = generated_photo((70, 90), seed=6)
    src = tmp_path / "in.png"
    Image.fromarray(image).save(src)
    out = tmp_path / "out"
    assert main(["enhance", str(src), "-o", str(out), "--model", str(model), "--method", "tiled",
                 "--tile", "64", "--max-side", "32"]) == 0
    written, _ = read_image(out / "in_enhanced.png")
    assert np.array_equal(written, enhance(random_model, image, method="tiled", tile=64, max_side=32))
    capsys.readouterr()
    assert main(["enhance", str(src), "-o", str(out), "--model", str(model), "--tile", "64"]) == 2
    assert "--tile goes with --method tiled" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["enhance", str(src), "-o", str(out), "--method", "tiled", "--tile", "32"])
    assert "must be >= 64" in capsys.readouterr().err
