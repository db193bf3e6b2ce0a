"""dpe_hf.data.corpora: datasets-backed corpora and resumable crop streams, all offline."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import datasets  # noqa: E402

from dpe_hf.data.corpora import (  # noqa: E402
    CorruptImageWarning,
    ImageCrops,
    MixedPairs,
    PairedCrops,
    SyntheticPairs,
    batches,
    decode_image,
    fivek_split_ids,
    load_images,
    load_pairs,
    shard_for_process,
)
from dpe_hf.data.generated import write_generated_folder  # noqa: E402
from dpe_hf.errors import ConfigError  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _quiet_datasets():
    datasets.disable_progress_bars()
    yield
    datasets.enable_progress_bars()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """6 images: 3 at the top, 2 in sub/, 1 in test/deeper/ ("test": a split keyword)."""
    root = tmp_path_factory.mktemp("imgs")
    write_generated_folder(root, 3, size=(40, 56), seed=1)
    write_generated_folder(root / "sub", 2, size=(56, 40), seed=2)
    write_generated_folder(root / "test" / "deeper", 1, size=(48, 48), seed=3, fmt="jpg")
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def pairs_dirs(tmp_path_factory) -> tuple[Path, Path]:
    """5 FiveK-like pairs a4498..a4502: input PNG, expert TIFF = 255 - input (checkable)."""
    root = tmp_path_factory.mktemp("pairs")
    src = write_generated_folder(root / "gen", 5, size=(36, 52), seed=7)
    (root / "input").mkdir()
    (root / "expert").mkdir()
    for n, p in zip(range(4498, 4503), src):
        arr = np.asarray(Image.open(p))
        Image.fromarray(arr).save(root / "input" / f"a{n:04d}.png")
        Image.fromarray(255 - arr).save(root / "expert" / f"a{n:04d}.tif")
    return root / "input", root / "expert"


def _paths(ds) -> list[str]:
    ds = ds.cast_column("image", datasets.Image(decode=False))
    return [r["image"]["path"] for r in ds]


def _take(stream, n):
    return [next(stream) for _ in range(n)]


def _same(a, b) -> bool:
    if isinstance(a, tuple):
        return all(torch.equal(x, y) for x, y in zip(a, b))
    return torch.equal(a, b)


# --------------------------------------------------------------------------------------------
# load_images
# --------------------------------------------------------------------------------------------


def test_load_images_local_recursive_no_labels(folder):
    ds = load_images(str(folder))
    assert isinstance(ds, datasets.Dataset)
    assert ds.column_names == ["image"]
    assert len(ds) == 6
    names = sorted(Path(p).relative_to(folder).as_posix() for p in _paths(ds))
    assert names == ["gen_0000.png", "gen_0001.png", "gen_0002.png", "sub/gen_0000.png",
                     "sub/gen_0001.png", "test/deeper/gen_0000.jpg"]
    img = ds[0]["image"]
    assert isinstance(img, Image.Image) and img.size == (56, 40)


def test_load_images_streaming(folder):
    ds = load_images(folder, streaming=True)
    assert isinstance(ds, datasets.IterableDataset)
    assert ds.column_names == ["image"]
    assert sorted(_paths(ds)) == sorted(_paths(load_images(folder)))


def test_load_images_several_sources(folder, pairs_dirs):
    both = load_images([folder, pairs_dirs[0]])
    assert len(both) == 11 and both.column_names == ["image"]
    stream = load_images([str(folder), str(pairs_dirs[0])], streaming=True)
    assert sorted(_paths(stream)) == sorted(_paths(both))


def test_load_images_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found") as e:
        load_images(str(tmp_path / "missing"))
    assert str(tmp_path / "missing") in str(e.value) and "\n" not in str(e.value)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "x.txt").write_text("x")
    with pytest.raises(ConfigError, match="no images") as e:
        load_images(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(e.value)
    with pytest.raises(ConfigError, match="nobody/no-such-dataset"):
        load_images("nobody/no-such-dataset")  # offline: not in the cache
    with pytest.raises(ConfigError):
        load_images([])


def test_load_images_hub_image_column_is_picked(monkeypatch):
    """A hub dataset whose image column is not called "image" (load_dataset faked: offline)."""
    import dpe_hf.data.corpora as corpora

    img = Image.new("RGB", (4, 3), (10, 20, 30))
    fake = datasets.Dataset.from_dict(
        {"caption": ["a"], "photo": [img]},
        features=datasets.Features(
            {"caption": datasets.Value("string"), "photo": datasets.Image()}
        ),
    )
    calls = []

    def fake_load_dataset(path, **kw):
        calls.append((path, kw))
        return fake

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    ds = corpora.load_images("someone/photos", split="validation")
    assert calls == [("someone/photos", {"split": "validation", "streaming": False})]
    assert ds.column_names == ["image"] and ds[0]["image"].size == (4, 3)


# --------------------------------------------------------------------------------------------
# load_pairs / fivek_split_ids / shard_for_process
# --------------------------------------------------------------------------------------------


def test_load_pairs(pairs_dirs):
    ds = load_pairs(*pairs_dirs)
    assert ds.column_names == ["id", "input", "target"]
    assert ds["id"] == ["a4498", "a4499", "a4500", "a4501", "a4502"]
    row = ds[1]
    a, b = np.asarray(row["input"]), np.asarray(row["target"])
    assert np.array_equal(b, 255 - a)
    sub = load_pairs(*pairs_dirs, ids=["a4502", "a4499"])
    assert sub["id"] == ["a4499", "a4502"]
    with pytest.raises(ConfigError, match="a9999"):
        load_pairs(*pairs_dirs, ids=["a9999"])


def test_load_pairs_unmatched(tmp_path, pairs_dirs):
    inp, exp = tmp_path / "in", tmp_path / "ex"
    shutil.copytree(pairs_dirs[0], inp)
    shutil.copytree(pairs_dirs[1], exp)
    for i in range(7):
        shutil.copy(inp / "a4498.png", inp / f"extra{i}.png")
    (exp / "a4500.tif").unlink()
    with pytest.raises(ConfigError) as e:
        load_pairs(inp, exp)
    msg = str(e.value)
    assert "\n" not in msg and "8 input(s)" in msg and "(and 3 more)" in msg
    assert "a4500.png" in msg and "extra0.png" in msg
    # restricting to matched ids is fine
    assert load_pairs(inp, exp, ids=["a4498", "a4501"])["id"] == ["a4498", "a4501"]
    with pytest.raises(ConfigError, match="not found"):
        load_pairs(tmp_path / "nope", exp)


def test_fivek_split_by_range():
    ids = ["a0001", "a4500", "a4501", "a5000", "a1234-jmac_DSC1459"]
    assert fivek_split_ids(ids, "train") == ["a0001", "a4500", "a1234-jmac_DSC1459"]
    assert fivek_split_ids(ids, "test") == ["a4501", "a5000"]
    assert fivek_split_ids(ids, "all") == ids
    with pytest.raises(ConfigError, match="img_1"):
        fivek_split_ids(["a0001", "img_1"], "train")
    with pytest.raises(ConfigError):
        fivek_split_ids(ids, "val")


def test_fivek_split_by_list_file(tmp_path):
    lst = tmp_path / "test.txt"
    lst.write_text("# FiveK random 500\na0003\n\n  a0001  # first\na0002-x\n")
    ids = ["a0001-jmac_1", "a0002-x", "a0003", "a0004"]
    assert fivek_split_ids(ids, "test", list_file=lst) == ["a0001-jmac_1", "a0002-x", "a0003"]
    lst.write_text("a0001\na0099\n")
    with pytest.raises(ConfigError, match="a0099"):
        fivek_split_ids(ids, "test", list_file=lst)
    with pytest.raises(ConfigError, match="not found"):
        fivek_split_ids(ids, "test", list_file=tmp_path / "missing.txt")


def test_shard_for_process_map_and_stream(folder):
    ds = load_images(folder)
    shards = [_paths(shard_for_process(ds, r, 2)) for r in range(2)]
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == sorted(_paths(ds))
    assert len(shards[0]) == 3
    stream = load_images(folder, streaming=True)
    sshards = [_paths(shard_for_process(stream, r, 2)) for r in range(2)]
    assert not set(sshards[0]) & set(sshards[1])
    assert sorted(sshards[0] + sshards[1]) == sorted(_paths(ds))
    assert shard_for_process(ds, 0, 1) is ds
    for rank, ws in [(2, 2), (-1, 2), (0, 0)]:
        with pytest.raises(ConfigError):
            shard_for_process(ds, rank, ws)


# --------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------


def test_decode_image_resizes_long_side(tmp_path):
    arr = np.asarray(Image.open(write_generated_folder(tmp_path, 1, size=(300, 450), seed=0)[0]))
    p = tmp_path / "big.jpg"
    Image.fromarray(arr).save(p, quality=95)
    x = decode_image(str(p), max_side=64)  # JPEG decoded at reduced DCT scale first
    assert x.dtype == torch.uint8 and x.shape == (3, 43, 64)
    full = decode_image({"bytes": p.read_bytes(), "path": None}, max_side=None)
    assert full.shape == (3, 300, 450)
    from dpe_hf.ops.resize import resize_long_side

    ref = resize_long_side(full.float() / 255, 64)
    assert (x.float() / 255 - ref).abs().mean() < 0.02
    assert decode_image(str(p), max_side=1000).shape == (3, 300, 450)  # never upscaled


def test_decode_image_16bit_tiff(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    arr = (np.random.default_rng(0).random((8, 12, 3)) * 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "e.tif", arr)
    x = decode_image(str(tmp_path / "e.tif"), max_side=None)
    expect = torch.from_numpy(np.round(arr / 257.0).astype(np.uint8)).permute(2, 0, 1)
    assert x.shape == (3, 8, 12) and (x.int() - expect.int()).abs().max() <= 1


def test_decode_image_16bit_png_is_rounded_once(tmp_path):
    import cv2

    arr = (np.random.default_rng(1).random((8, 12, 3)) * 65535).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "e.png"), arr[:, :, ::-1])  # OpenCV writes BGR
    x = decode_image(str(tmp_path / "e.png"), max_side=None)
    expect = torch.from_numpy(np.round(arr / 257.0).astype(np.uint8)).permute(2, 0, 1)
    assert torch.equal(x, expect)  # 16 bits kept until the uint8 rounding


def test_decode_image_bytes_and_path_agree(tmp_path):
    p = write_generated_folder(tmp_path, 1, size=(300, 450), seed=2)[0]
    big = tmp_path / "big.jpg"
    Image.open(p).save(big, quality=90)
    for max_side in (None, 64):
        by_path = decode_image(str(big), max_side)
        assert torch.equal(by_path, decode_image({"bytes": big.read_bytes(), "path": None}, max_side))
        assert torch.equal(by_path, decode_image({"bytes": None, "path": str(big)}, max_side))


# --------------------------------------------------------------------------------------------
# crop streams
# --------------------------------------------------------------------------------------------


def test_paired_crops_shapes_pairing_and_determinism(pairs_dirs):
    ds = load_pairs(*pairs_dirs)
    a = _take(PairedCrops(ds, 24, seed=3, max_side=48), 7)
    b = _take(PairedCrops(ds, 24, seed=3, max_side=48), 7)
    c = _take(PairedCrops(ds, 24, seed=4, max_side=48), 7)
    for (x, y), (x2, y2) in zip(a, b):
        assert x.shape == y.shape == (3, 24, 24) and x.dtype == torch.float32
        assert 0 <= float(x.min()) and float(x.max()) <= 1
        assert torch.equal(x, x2) and torch.equal(y, y2)
        # expert = 255 - input survives resize (to +-1 level) and the shared crop / dihedral
        assert torch.allclose(y, 1 - x, atol=1.5 / 255)
    assert not all(_same(p, q) for p, q in zip(a, c))


def test_paired_crops_input_edit_changes_the_input_only(pairs_dirs):
    from dpe_hf.data.degrade import DegradeConfig, EditParams, apply_edit

    ds = load_pairs(*pairs_dirs)
    plain = _take(PairedCrops(ds, 24, seed=3, max_side=48), 6)
    # exposure only, always -1 EV: the input must be exactly the plain crop re-exposed
    dark = DegradeConfig(exposure_ev=(-1.0, -1.0), wb_log_gain=0.0, gamma=(1, 1), contrast=(1, 1),
                         saturation=(1, 1), tone_curve=(0, 0), black_level=(0, 0), white_level=(1, 1),
                         p_identity=0.0)
    edited = _take(PairedCrops(ds, 24, seed=3, max_side=48, input_edit=dark), 6)
    for (x, y), (ex, ey) in zip(plain, edited):
        assert torch.equal(y, ey)  # same crop, same target
        torch.testing.assert_close(ex, apply_edit(x, EditParams(exposure_ev=-1.0)))
        assert ex.mean() < x.mean()


def test_paired_crops_epoch_visits_every_pair_once(pairs_dirs):
    ds = load_pairs(*pairs_dirs)
    full = {tuple(decode_image(str(p), None).flatten()[:64].tolist())
            for p in sorted(pairs_dirs[0].iterdir())}
    stream = PairedCrops(ds, (36, 52), seed=0, max_side=None, augment=False, epochs=2)
    out = list(stream)
    assert len(out) == 10
    keys = [tuple((x * 255).round().to(torch.uint8).flatten()[:64].tolist()) for x, _ in out]
    assert set(keys[:5]) == full and set(keys[5:]) == full
    assert keys[:5] != keys[5:]  # reshuffled per epoch (5! orders; seed 0 gives another one)


@pytest.mark.parametrize("n", [3, 5, 8])
def test_paired_crops_resume_exact(pairs_dirs, n):
    ds = load_pairs(*pairs_dirs)
    ref = PairedCrops(ds, 16, seed=9, max_side=40)
    _take(ref, n)
    state = json.loads(json.dumps(ref.state_dict()))  # checkpoints may store it as JSON
    expect = _take(ref, 6)
    fresh = PairedCrops(ds, 16, seed=9, max_side=40)
    fresh.load_state_dict(state)
    got = _take(fresh, 6)
    assert all(_same(p, q) for p, q in zip(expect, got))
    with pytest.raises(ValueError):
        PairedCrops(ds, 16, seed=10).load_state_dict(state)
    with pytest.raises(ValueError):
        ImageCrops(load_images(pairs_dirs[0]), 16, seed=9).load_state_dict(state)


def test_paired_crops_target_of_other_size_is_resized(tmp_path):
    (tmp_path / "i").mkdir()
    (tmp_path / "e").mkdir()
    write_generated_folder(tmp_path / "i", 1, size=(30, 40), seed=0)
    write_generated_folder(tmp_path / "e", 1, size=(60, 80), seed=0)
    x, y = next(PairedCrops(load_pairs(tmp_path / "i", tmp_path / "e"), 20, seed=0, max_side=None))
    assert x.shape == y.shape == (3, 20, 20)


def test_image_crops_map_and_stream(folder):
    ds = load_images(folder)
    a = _take(ImageCrops(ds, 32, seed=1, max_side=50), 8)
    b = _take(ImageCrops(ds, 32, seed=1, max_side=50), 8)
    assert all(x.shape == (3, 32, 32) and x.dtype == torch.float32 for x in a)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    stream = load_images(folder, streaming=True)
    s1 = _take(ImageCrops(stream, 32, seed=1, max_side=50, shuffle_buffer=4), 8)
    s2 = _take(ImageCrops(stream, 32, seed=1, max_side=50, shuffle_buffer=4), 8)
    s3 = _take(ImageCrops(stream, 32, seed=2, max_side=50, shuffle_buffer=4), 8)
    assert all(torch.equal(x, y) for x, y in zip(s1, s2))
    assert not all(torch.equal(x, y) for x, y in zip(s1, s3))


@pytest.mark.parametrize("shuffle_buffer,exact", [(4, True), (0, False)])
def test_image_crops_stream_resume_exact(folder, shuffle_buffer, exact):
    stream = load_images(folder, streaming=True)

    def make():
        return ImageCrops(
            stream, 24, seed=5, max_side=48, shuffle_buffer=shuffle_buffer, exact_resume=exact
        )

    ref = make()
    _take(ref, 8)  # crosses the epoch boundary (6 images)
    state = json.loads(json.dumps(ref.state_dict()))
    assert state["epoch"] == 1 and state["position"] == 2
    expect = _take(ref, 7)
    fresh = make()
    fresh.load_state_dict(state)
    assert all(torch.equal(x, y) for x, y in zip(expect, _take(fresh, 7)))


def test_synthetic_pairs(folder):
    ds = load_images(folder)
    pairs = _take(SyntheticPairs(ds, 24, seed=2, max_side=48), 7)
    clean_ref = _take(ImageCrops(ds, 24, seed=2, max_side=48), 7)
    again = _take(SyntheticPairs(ds, 24, seed=2, max_side=48), 7)
    for (deg, clean), ref, (deg2, _) in zip(pairs, clean_ref, again):
        assert deg.shape == clean.shape == (3, 24, 24)
        assert torch.equal(clean, ref) and torch.equal(deg, deg2)
        assert not torch.equal(deg, clean)
        assert 0 <= float(deg.min()) and float(deg.max()) <= 1
    ref = SyntheticPairs(ds, 24, seed=2, max_side=48)
    _take(ref, 4)
    state = ref.state_dict()
    fresh = SyntheticPairs(ds, 24, seed=2, max_side=48)
    fresh.load_state_dict(state)
    assert all(_same(p, q) for p, q in zip(_take(ref, 4), _take(fresh, 4)))


def test_mixed_pairs_weights_and_resume(folder, pairs_dirs):
    imgs, prs = load_images(folder), load_pairs(*pairs_dirs)

    def make(weights=(3.0, 1.0)):
        return MixedPairs([SyntheticPairs(imgs, 16, seed=1, max_side=40),
                           PairedCrops(prs, 16, seed=1, max_side=40)], list(weights), seed=11)

    mix = make()
    _take(mix, 9)
    state = mix.state_dict()
    expect = _take(mix, 12)
    fresh = make()
    fresh.load_state_dict(state)
    assert all(_same(p, q) for p, q in zip(expect, _take(fresh, 12)))
    probe = make()
    picks = [probe._pick(t) for t in range(400)]
    assert 0.65 < picks.count(0) / 400 < 0.85
    only_real = make((0.0, 1.0))
    real = PairedCrops(prs, 16, seed=1, max_side=40)
    assert all(_same(p, q) for p, q in zip(_take(only_real, 6), _take(real, 6)))
    with pytest.raises(ValueError):
        MixedPairs([real], [1.0, 2.0], seed=0)


def test_batches(pairs_dirs):
    ds = load_pairs(*pairs_dirs)
    x, y = next(batches(PairedCrops(ds, 16, seed=0, max_side=40), 4))
    assert x.shape == y.shape == (4, 3, 16, 16)
    finite = ImageCrops(load_images(pairs_dirs[0]), 16, seed=0, max_side=40, epochs=1)
    shapes = [b.shape[0] for b in batches(finite, 2)]
    assert shapes == [2, 2, 1]
    finite = ImageCrops(load_images(pairs_dirs[0]), 16, seed=0, max_side=40, epochs=1)
    assert [b.shape[0] for b in batches(finite, 2, drop_last=True)] == [2, 2]


def test_corrupt_image_skipped_with_warning(tmp_path):
    write_generated_folder(tmp_path, 3, size=(32, 32), seed=0)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (tmp_path / "truncated.jpg").write_bytes(
        (lambda b: b[: len(b) // 2])(_jpeg_bytes()))
    ds = load_images(tmp_path)
    assert len(ds) == 5
    with pytest.warns(CorruptImageWarning) as rec:
        out = list(ImageCrops(ds, 16, seed=0, max_side=None, epochs=2))
    assert len(out) == 6
    msgs = [str(w.message) for w in rec if issubclass(w.category, CorruptImageWarning)]
    assert sum("broken.png" in m for m in msgs) == 1  # once, not once per epoch
    assert sum("truncated.jpg" in m for m in msgs) == 1
    with pytest.warns(CorruptImageWarning) as rec:
        stream = load_images(tmp_path, streaming=True)
        out = list(ImageCrops(stream, 16, seed=0, max_side=None, epochs=1))
    assert len(out) == 3
    msgs = " ".join(str(w.message) for w in rec)
    assert "broken.png" in msgs and "truncated.jpg" in msgs


def test_all_corrupt_raises(tmp_path):
    (tmp_path / "a.png").write_bytes(b"nope")
    stream = ImageCrops(load_images(tmp_path), 8, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorruptImageWarning)
        with pytest.raises(ConfigError, match="decodable"):
            next(stream)


def test_preload_fills_cache(pairs_dirs):
    stream = PairedCrops(load_pairs(*pairs_dirs), 16, seed=0, max_side=40)
    assert stream.preload(num_threads=2) == 5
    cached = [x for pair in stream._cache.values() for x in pair]
    assert len(cached) == 10
    assert all(x.dtype == torch.uint8 and max(x.shape[-2:]) == 40 for x in cached)


def _jpeg_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    arr = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(arr).save(buf, "JPEG")
    return buf.getvalue()
