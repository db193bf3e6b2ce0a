"""The `dpe` command line: enhance (batch behaviour, formats, safety) and eval (numbers, pairing).

Runs `main([...])` in-process with a tiny random model; images are a few dozen pixels.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dpe_hf.cli import main
from dpe_hf.imageio import read_image, to_float32
from dpe_hf.inference import enhance
from dpe_hf.metrics import ciede2000, psnr, ssim
from dpe_hf.models.generator import DPEGenerator
from helpers import REPO, error_lines, photo, save


# --------------------------------------------------------------------------------------------
# start-up
# --------------------------------------------------------------------------------------------


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys\n"
        "from dpe_hf.cli import main\n"
        "for argv in (['--help'], ['enhance', '--help'], ['eval', '--help'], ['--version']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, (argv, exc.code)\n"
        "print(sorted(m for m in ('torch', 'numpy', 'PIL', 'huggingface_hub') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "usage: dpe enhance" in proc.stdout and "--skip-existing" in proc.stdout
    assert "dpe 0.1" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "[]"


# --------------------------------------------------------------------------------------------
# dpe enhance
# --------------------------------------------------------------------------------------------


def test_enhance_png_and_jpeg_keep_size_and_format(tmp_path, model, capsys):
    png = save(tmp_path / "one.png", photo(40, 56))
    jpg = save(tmp_path / "two.jpg", photo(48, 36, seed=1), quality=95)
    out = tmp_path / "out"
    assert main(["enhance", str(png), str(jpg), "-o", str(out), "--model", str(model)]) == 0
    assert "2 written" in capsys.readouterr().err
    assert sorted(os.listdir(out)) == ["one_enhanced.png", "two_enhanced.jpg"]
    with Image.open(out / "one_enhanced.png") as im:
        assert (im.format, im.size) == ("PNG", (56, 40))
    with Image.open(out / "two_enhanced.jpg") as im:
        assert (im.format, im.size) == ("JPEG", (36, 48))


def test_enhance_ext_and_suffix(tmp_path, model, capsys):
    jpg = save(tmp_path / "two.jpg", photo(), quality=95)
    out = tmp_path / "out"
    assert main(["enhance", str(jpg), "-o", str(out), "--model", str(model), "--ext", ".PNG",
                 "--suffix=-x", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["written"] == [str(out / "two-x.PNG")] and summary["failed"] == []
    with Image.open(out / "two-x.PNG") as im:
        assert im.format == "PNG"


def test_strength_zero_reproduces_png_exactly(tmp_path, model):
    src = photo(33, 45, seed=3)
    png = save(tmp_path / "p.png", src)
    out = tmp_path / "out"
    assert main(["enhance", str(png), "-o", str(out), "--model", str(model), "--strength", "0"]) == 0
    assert np.array_equal(np.asarray(Image.open(out / "p_enhanced.png")), src)


def test_auto_exposure_brings_two_exposures_of_a_photo_together(tmp_path, model):
    from dpe_hf.ops.exposure import apply_exposure_gain

    src = photo(40, 56, seed=4)
    save(tmp_path / "normal.png", src)
    save(tmp_path / "under.png", apply_exposure_gain(src, 0.25))  # two stops darker
    for flags, out in (([], tmp_path / "plain"), (["--auto-exposure"], tmp_path / "even")):
        assert main(["enhance", str(tmp_path / "normal.png"), str(tmp_path / "under.png"), "-o", str(out),
                     "--model", str(model), *flags]) == 0
    gap = {name: np.abs(read_image(tmp_path / name / "normal_enhanced.png")[0].astype(float)
                        - read_image(tmp_path / name / "under_enhanced.png")[0]).mean()
           for name in ("plain", "even")}
    assert gap["plain"] > 30 and gap["even"] < 3, gap


def test_sixteen_bit_png_stays_sixteen_bit(tmp_path, model):
    cv2 = pytest.importorskip("cv2")
    src = photo(36, 44, seed=4, dtype=np.uint16)
    path = tmp_path / "deep.png"
    assert cv2.imwrite(str(path), src[:, :, ::-1])
    out = tmp_path / "out"
    assert main(["enhance", str(path), "-o", str(out), "--model", str(model)]) == 0
    result = cv2.imread(str(out / "deep_enhanced.png"), cv2.IMREAD_UNCHANGED)
    assert result.dtype == np.uint16 and result.shape == (36, 44, 3)
    # the near-identity random model keeps the picture: 16-bit precision survived
    assert np.abs(result[:, :, ::-1].astype(np.int64) - src).mean() < 2000
    assert len(np.unique(result)) > 256


def test_batch_goes_on_past_bad_files(tmp_path, model, capsys):
    good = save(tmp_path / "good.jpg", photo(), quality=95)
    missing = tmp_path / "missing.png"
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a photo\n")
    whole = save(tmp_path / "whole.jpg", photo(120, 160, seed=5), quality=95).read_bytes()
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "out"

    code = main(["enhance", str(good), str(missing), str(text), str(truncated), "-o", str(out),
                 "--model", str(model)])
    err = capsys.readouterr().err
    assert code == 1
    assert os.listdir(out) == ["good_enhanced.jpg"]  # no partial or temporary files
    errors = error_lines(err)
    assert len(errors) == 3, err
    for bad, reason in ((missing, "file not found"), (text, ""), (truncated, "")):
        naming = [line for line in err.splitlines() if str(bad) in line]
        assert len(naming) == 1, err
        assert naming[0].startswith(f"error: {bad}: ") and reason in naming[0]
    assert "good.jpg" not in "\n".join(errors)
    assert "1 written, 3 failed" in err


def test_output_never_overwrites_its_input(tmp_path, model, capsys):
    png = save(tmp_path / "p.png", photo())
    before = png.read_bytes()
    code = main(["enhance", str(png), "-o", str(tmp_path), "--suffix", "", "--overwrite",
                 "--model", str(model), "--json"])
    captured = capsys.readouterr()
    assert code == 1
    assert png.read_bytes() == before
    assert error_lines(captured.err) == [f"error: {png}: output would overwrite the input"]
    assert json.loads(captured.out)["failed"] == [{"path": str(png), "reason": "output would overwrite the input"}]
    assert sorted(os.listdir(tmp_path)) == ["p.png"]


def test_existing_outputs_need_overwrite_or_skip(tmp_path, model, capsys):
    src = photo(seed=6)
    png = save(tmp_path / "p.png", src)
    out = tmp_path / "out"
    out.mkdir()
    target = save(out / "p_enhanced.png", np.zeros_like(src))
    placeholder = target.read_bytes()
    args = ["enhance", str(png), "-o", str(out), "--model", str(model), "--json"]

    assert main(args) == 1
    captured = capsys.readouterr()
    assert "exists; use --overwrite or --skip-existing" in captured.err
    assert target.read_bytes() == placeholder

    assert main([*args, "--skip-existing"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["skipped"] == [str(target)] and summary["written"] == []
    assert target.read_bytes() == placeholder

    assert main([*args, "--overwrite"]) == 0
    assert json.loads(capsys.readouterr().out)["written"] == [str(target)]
    assert np.abs(np.asarray(Image.open(target)).astype(int) - src).mean() < 8
    assert sorted(os.listdir(out)) == ["p_enhanced.png"]


def test_folders_recursive_and_glob_patterns(tmp_path, model, capsys):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    save(src / "a.png", photo(seed=1))
    save(src / "sub" / "b.png", photo(seed=2))
    (src / "readme.txt").write_text("not an image")
    out = tmp_path / "out"
    base = ["--model", str(model), "--json"]

    assert main(["enhance", str(src), "-o", str(out), *base]) == 0
    assert json.loads(capsys.readouterr().out)["written"] == [str(out / "a_enhanced.png")]

    assert main(["enhance", str(src), "-o", str(out), "--recursive", "--skip-existing", *base]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["written"] == [str(out / "sub" / "b_enhanced.png")]
    assert summary["skipped"] == [str(out / "a_enhanced.png")]

    glob_out = tmp_path / "glob_out"
    assert main(["enhance", str(src / "*.png"), "-o", str(glob_out), *base]) == 0
    assert json.loads(capsys.readouterr().out)["written"] == [str(glob_out / "a_enhanced.png")]
    assert main(["enhance", str(src / "*.jpg"), "-o", str(glob_out), *base]) == 1
    assert "no file matches" in capsys.readouterr().err


def test_no_bundled_model_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    import dpe_hf.model_spec

    monkeypatch.setattr(dpe_hf.model_spec, "bundled_models", lambda: {})
    monkeypatch.chdir(tmp_path)
    save(tmp_path / "x.png", photo())
    assert main(["enhance", "x.png", "-o", "out"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert "no bundled default model" in err[0]
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------
# dpe eval
# --------------------------------------------------------------------------------------------


def _reference_scores(pred_paths, ref_paths) -> np.ndarray:
    """(N, 3) psnr/ssim/ΔE00 recomputed straight from dpe_hf.metrics."""
    def load(p):
        return torch.from_numpy(to_float32(read_image(p)[0])).permute(2, 0, 1)[None]

    rows = []
    for p, r in zip(pred_paths, ref_paths):
        x, y = load(p), load(r)
        rows.append([float(psnr(x, y)[0]), float(ssim(x, y)[0]), float(ciede2000(x, y)[0])])
    return np.array(rows)


@pytest.fixture
def eval_folders(tmp_path):
    pred, ref = tmp_path / "pred", tmp_path / "ref"
    pred.mkdir()
    ref.mkdir()
    for i, stem in enumerate(["a", "b", "c"]):
        clean = photo(32, 40, seed=10 + i)
        noisy = np.clip(clean + np.random.default_rng(i).normal(0, 12, clean.shape), 0, 255).astype(np.uint8)
        save(ref / f"{stem}.png", clean)
        save(pred / f"{stem}.png", noisy)
    save(pred / "only_in_pred.png", photo(seed=20))
    save(ref / "only_in_ref.png", photo(seed=21))
    return pred, ref


def test_eval_table_matches_metrics(eval_folders, capsys):
    pred, ref = eval_folders
    assert main(["eval", "--pred", str(pred), "--ref", str(ref)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert lines[0].split()[:3] == ["image", "PSNR", "SSIM"]
    assert [line.split()[0] for line in lines[1:]] == ["a", "b", "c", "mean"]
    expected = _reference_scores([pred / f"{s}.png" for s in "abc"], [ref / f"{s}.png" for s in "abc"])
    printed = np.array([[float(v) for v in line.split()[1:]] for line in lines[1:]])
    tolerance = np.array([0.005, 0.0005, 0.005]) + 1e-9
    assert np.all(np.abs(printed[:3] - expected) <= tolerance)
    assert np.all(np.abs(printed[3] - expected.mean(axis=0)) <= tolerance)
    assert "only_in_pred" in captured.err and "only_in_ref" in captured.err


def test_eval_json(eval_folders, capsys):
    pred, ref = eval_folders
    assert main(["eval", "--pred", str(pred), "--ref", str(ref), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in result["images"]] == ["a", "b", "c"]
    assert result["only_pred"] == ["only_in_pred"] and result["only_ref"] == ["only_in_ref"]
    expected = _reference_scores([pred / f"{s}.png" for s in "abc"], [ref / f"{s}.png" for s in "abc"])
    mean = result["mean"]
    assert np.allclose([mean["psnr"], mean["ssim"], mean["delta_e"]], expected.mean(axis=0), rtol=1e-6)


def test_eval_with_model_enhances_in_memory(eval_folders, model, capsys):
    pred, ref = eval_folders  # pred plays the inputs here
    assert main(["eval", "--model", str(model), "--input", str(pred), "--ref", str(ref), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    generator = DPEGenerator.from_pretrained(str(model))
    a_in, _ = read_image(pred / "a.png")
    a_ref, _ = read_image(ref / "a.png")
    x = torch.from_numpy(to_float32(enhance(generator, a_in))).permute(2, 0, 1)[None]
    y = torch.from_numpy(to_float32(a_ref)).permute(2, 0, 1)[None]
    assert result["images"][0]["psnr"] == pytest.approx(float(psnr(x, y)[0]), rel=1e-6)


def test_eval_size_mismatch_fails_that_pair(eval_folders, capsys):
    pred, ref = eval_folders
    save(pred / "b.png", photo(30, 40))
    assert main(["eval", "--pred", str(pred), "--ref", str(ref), "--json"]) == 1
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert [r["name"] for r in result["images"]] == ["a", "c"]
    assert len(result["failed"]) == 1 and "differs from the reference" in result["failed"][0]["reason"]
    assert [line for line in error_lines(captured.err) if "b.png" in line]


def test_eval_without_common_stems_exits_2(tmp_path, capsys):
    (tmp_path / "p").mkdir()
    (tmp_path / "r").mkdir()
    save(tmp_path / "p" / "x.png", photo())
    save(tmp_path / "r" / "y.png", photo())
    assert main(["eval", "--pred", str(tmp_path / "p"), "--ref", str(tmp_path / "r")]) == 2
    assert "no image stems in common" in capsys.readouterr().err


def test_enhance_without_model_uses_the_bundled_one(tmp_path):
    from dpe_hf.hub import load_generator

    src = tmp_path / "in.png"
    Image.fromarray(photo(64, 80, seed=5)).save(src)
    assert main(["enhance", str(src), "-o", str(tmp_path / "out")]) == 0
    written, _ = read_image(tmp_path / "out" / "in_enhanced.png")
    expected = enhance(load_generator("dpe-expertC"), photo(64, 80, seed=5))
    assert np.array_equal(written, expected)
    assert not np.array_equal(written, photo(64, 80, seed=5))  # the bundled model changes photos


def test_method_and_device_flags(tmp_path, capsys):
    torch.manual_seed(0)
    model = tmp_path / "model"
    DPEGenerator(width=0.25, init_scale=None).save_pretrained(model)  # visibly changes photos
    src = tmp_path / "in.png"
    Image.fromarray(photo(64, 80, seed=6)).save(src)
    for method in ("guided", "residual"):
        out = tmp_path / method
        assert main(["enhance", str(src), "-o", str(out), "--model", str(model), "--method", method,
                     "--device", "cpu", "--max-side", "32"]) == 0
        written, _ = read_image(out / "in_enhanced.png")
        from dpe_hf.hub import load_generator

        expected = enhance(load_generator(model), photo(64, 80, seed=6), method=method, max_side=32)
        assert np.array_equal(written, expected)
    # the two ways of carrying the change to full size differ
    assert not np.array_equal(read_image(tmp_path / "guided" / "in_enhanced.png")[0],
                              read_image(tmp_path / "residual" / "in_enhanced.png")[0])
    capsys.readouterr()
    assert main(["enhance", str(src), "-o", str(tmp_path / "x"), "--model", str(model), "--device", "tpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--device tpu" in err[0]
    if not torch.cuda.is_available():
        assert main(["enhance", str(src), "-o", str(tmp_path / "y"), "--model", str(model), "--device", "cuda:3"]) == 2
        assert "no such CUDA device" in capsys.readouterr().err


def test_heic_without_its_extra_is_one_error_line_and_the_rest_is_done(tmp_path, model, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # as if the [heif] extra were missing
    folder = tmp_path / "in"
    folder.mkdir()
    save(folder / "a.png", photo())
    (folder / "b.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 16)
    assert main(["enhance", str(folder), "-o", str(tmp_path / "out"), "--model", str(model)]) == 1
    assert os.listdir(tmp_path / "out") == ["a_enhanced.png"]
    assert error_lines(capsys.readouterr().err) == [
        f'error: {folder / "b.heic"}: HEIF needs the optional extra: pip install "dpe_hf[heif]"']


# --------------------------------------------------------------------------------------------
# photos in worker threads: two at a time, reported in order
# --------------------------------------------------------------------------------------------


def mixed_batch(folder: Path) -> list[Path]:
    """Six photos in five formats with a truncated JPEG in the middle."""
    folder.mkdir()
    files = [save(folder / "a.png", photo(40, 56, seed=1)), save(folder / "b.jpg", photo(48, 36, seed=2), quality=90),
             save(folder / "c.webp", photo(30, 50, seed=3), quality=90), save(folder / "d.tif", photo(33, 45, seed=4))]
    whole = (folder / "b.jpg").read_bytes()
    (folder / "c_cut.jpg").write_bytes(whole[: len(whole) // 2])
    files.insert(2, folder / "c_cut.jpg")
    files.append(save(folder / "e.png", photo(36, 44, seed=5, dtype=np.uint16)[:, :, 0]))
    return files


def test_overlapped_io_writes_the_same_bytes_and_reports_the_same(tmp_path, model, capsys):
    files = mixed_batch(tmp_path / "in")
    summaries, outputs = [], []
    for mode in (["--overlap-io", "on"], ["--overlap-io", "off"]):
        out = tmp_path / mode[1]
        code = main(["enhance", *map(str, files), "-o", str(out), "--model", str(model), "--json", *mode])
        assert code == 1  # the truncated JPEG
        summary = json.loads(capsys.readouterr().out)
        summaries.append(({Path(p).name for p in summary["written"]}, summary["failed"]))
        outputs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert summaries[0] == summaries[1]
    assert len(summaries[0][0]) == 5 and [f["path"] for f in summaries[0][1]] == [str(files[2])]
    assert outputs[0] == outputs[1] and len(outputs[0]) == 5
    assert not [p for p in (tmp_path / "on").iterdir() if p.name.startswith(".")]  # no temporaries


def test_two_photos_are_in_work_at_once_and_no_more(tmp_path, model, monkeypatch):
    import threading

    import dpe_hf.imageio

    files = [save(tmp_path / f"p{i}.png", photo(24, 32, seed=i)) for i in range(5)]
    both_read = threading.Barrier(2, timeout=30)  # broken (an error) unless two photos are read at once
    lock = threading.Lock()
    in_work, most, threads = set(), 0, set()
    real_read, real_write = dpe_hf.imageio.read_image, dpe_hf.imageio.write_image

    def read(path, **kwargs):
        nonlocal most
        with lock:
            in_work.add(Path(path).stem)
            most = max(most, len(in_work))
            threads.add(threading.current_thread().name)
        if Path(path).stem in ("p0", "p1"):
            both_read.wait()
        return real_read(path, **kwargs)

    def write(path, *args, **kwargs):
        written = real_write(path, *args, **kwargs)
        with lock:
            in_work.discard(Path(path).stem.removesuffix("_enhanced"))
        return written

    monkeypatch.setattr(dpe_hf.imageio, "read_image", read)
    monkeypatch.setattr(dpe_hf.imageio, "write_image", write)
    assert main(["enhance", *map(str, files), "-o", str(tmp_path / "out"), "--model", str(model),
                 "--overlap-io", "on"]) == 0
    assert most == 2 and not in_work
    assert len(threads) == 2 and all(name.startswith("dpe-photo") for name in threads)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"p{i}_enhanced.png" for i in range(5)]


def test_library_threads_hold_blas_and_opencv_to_the_share_and_give_them_back(monkeypatch):
    import cv2
    from threadpoolctl import threadpool_info

    from dpe_hf.batch import library_threads

    def blas() -> list[int]:
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    opencv, numpy_blas = cv2.getNumThreads(), blas()
    assert numpy_blas  # numpy's BLAS is one of the pools seen
    with library_threads(1):
        assert cv2.getNumThreads() == 1 and set(blas()) == {1}
    assert cv2.getNumThreads() == opencv and blas() == numpy_blas
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # an install without it: OpenCV's pool only
    with library_threads(1):
        assert cv2.getNumThreads() == 1 and blas() == numpy_blas
    assert cv2.getNumThreads() == opencv


@pytest.mark.parametrize("count, mode, workers", [(1, "on", 1), (3, "on", 2), (3, "auto", 2), (3, "off", 1)])
def test_each_photo_gets_its_share_of_the_threads(tmp_path, model, monkeypatch, count, mode, workers):
    import dpe_hf.cli.enhance
    from dpe_hf.ops.strips import worker_threads

    files = [save(tmp_path / f"p{i}.png", photo(24, 32, seed=i)) for i in range(count)]
    loaded, real_load = [], dpe_hf.cli.enhance.load_model

    def load(spec, device, runtime, threads):
        loaded.append(threads)
        return real_load(spec, device, runtime, threads)

    monkeypatch.setattr(dpe_hf.cli.enhance, "load_model", load)
    assert main(["enhance", *map(str, files), "-o", str(tmp_path / "out"), "--model", str(model),
                 "--overlap-io", mode]) == 0
    assert loaded == [max(1, worker_threads(None) // workers)]


def test_a_failed_write_is_reported_and_the_batch_goes_on(tmp_path, model, monkeypatch, capsys):
    import dpe_hf.imageio
    from dpe_hf.errors import ImageWriteError

    files = [save(tmp_path / f"p{i}.png", photo(24, 32, seed=i)) for i in range(3)]
    real_write = dpe_hf.imageio.write_image

    def write(path, *args, **kwargs):
        if Path(path).name.startswith("p1"):
            raise ImageWriteError(path, "no space left on device")
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(dpe_hf.imageio, "write_image", write)
    out = tmp_path / "out"
    assert main(["enhance", *map(str, files), "-o", str(out), "--model", str(model)]) == 1
    assert sorted(os.listdir(out)) == ["p0_enhanced.png", "p2_enhanced.png"]
    assert error_lines(capsys.readouterr().err) == [f"error: {out / 'p1_enhanced.png'}: no space left on device"]


# --------------------------------------------------------------------------------------------
# the package, and the rules it shares with the app (dpe_hf.batch)
# --------------------------------------------------------------------------------------------


def test_python_dash_m_runs_the_cli_package(tmp_path, model):
    src = save(tmp_path / "p.png", photo())
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "dpe_hf.cli", "enhance", str(src), "-o", str(tmp_path / "out"),
                           "--model", str(model)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "1 written" in proc.stderr and (tmp_path / "out" / "p_enhanced.png").is_file()


def test_output_names_and_the_pixel_limit_are_one_rule():
    from dpe_hf import batch
    from dpe_hf.imageio import DEFAULT_MAX_PIXELS

    assert batch.DEFAULT_MAX_PIXELS == DEFAULT_MAX_PIXELS
    assert batch.output_name("a/photo.JPG") == "photo_enhanced.JPG"
    assert batch.output_name("photo.tiff", "_x") == "photo_x.tiff"
    assert batch.output_name("anim.gif") == "anim_enhanced.png"  # not writable: png
    assert batch.output_name("scan.bmp", ext=".WEBP") == "scan_enhanced.WEBP"
    assert batch.output_name("noext") == "noext_enhanced.png"


def test_enhance_runs_with_a_model_loaded_beforehand(tmp_path, model, capsys):
    from dpe_hf.cli import build_parser
    from dpe_hf.cli import enhance as enhance_command
    from dpe_hf.hub import load_generator

    src = save(tmp_path / "p.png", photo(seed=7))
    generator = load_generator(model)
    args = build_parser().parse_args(["enhance", str(src), "-o", str(tmp_path / "out"), "--model", "./not-loaded"])
    assert enhance_command.run(args, generator=generator) == 0  # --model is not looked at
    assert np.array_equal(read_image(tmp_path / "out" / "p_enhanced.png")[0], enhance(generator, photo(seed=7)))
    assert "1 written" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# scale-out: a plain run never imports accelerate (the launch itself is in tests/slow)
# --------------------------------------------------------------------------------------------


def test_a_plain_run_does_not_import_accelerate(tmp_path, model):
    src = save(tmp_path / "p.png", photo())
    code = ("import sys\nfrom dpe_hf.cli import main\n"
            f"assert main(['enhance', {str(src)!r}, '-o', {str(tmp_path / 'out')!r}, '--model', {str(model)!r}]) == 0\n"
            "print('accelerate' in sys.modules)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "LOCAL_RANK", "RANK")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_a_model_that_fails_to_load_stops_the_run_with_one_line_and_no_output(tmp_path, capsys):
    """A model folder whose weights cannot be read: exit 2 with one line naming it, nothing
    written, also when no photo needed the model."""
    folder = tmp_path / "broken"
    DPEGenerator(width=0.25).save_pretrained(folder)
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    image = tmp_path / "p.png"
    save(image, photo(48, 64, seed=1))
    out = tmp_path / "out"
    assert main(["enhance", str(image), "-o", str(out), "--model", str(folder)]) == 2
    assert not out.exists()
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and str(folder) in lines[0]
    out.mkdir()
    save(out / "p_enhanced.png", photo(48, 64, seed=2))  # nothing left to do: the model still has to load
    assert main(["enhance", str(image), "-o", str(out), "--model", str(folder), "--skip-existing"]) == 2


def test_progress_draws_a_bar_only_on_a_terminal(monkeypatch):
    import io

    from dpe_hf.cli import common

    items = [1, 2, 3]
    monkeypatch.setattr(common.sys, "stderr", io.StringIO())  # a script's or a log's stderr
    assert common.progress(items, "enhance") is items

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(common.sys, "stderr", terminal)
    bar = common.progress(items, "enhance", total=3)
    assert bar is not items and list(bar) == items
    assert "enhance" in terminal.getvalue()
