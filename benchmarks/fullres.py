"""Full-resolution enhancement: speed, peak memory and fidelity of the ways to go full size.

    python benchmarks/fullres.py [--data ../shared/data] [--model M] [--quick] [--proxy-edit]
                                 [--sizes native,12,24,48] [--images N] [--threads T] [--json]
    python benchmarks/fullres.py --truth [--truth-mp 2.5] [--truth-images 6]
    python benchmarks/fullres.py --batch-io [--batch-images 6] [--repeats 3]
    python benchmarks/fullres.py --cli [--photos 5] [--repeats 3] [--runtimes auto,torch]

`--cli`: `dpe enhance` as a user runs it on 12 MP JPEGs: warm, single run with start-up, peak
RSS, fidelity and the ratio to a bare decode + encode, in one table (`benchmarks/cli_speed.py`).

Photos: DATA/target/debian/*.jpg at their own size (1.3 to 20 MP), and copies of the largest ones
resized with PIL to 12, 24 and 48 MP (made once into a temporary folder, JPEG q92).
`--quick`: only 2 photos at 12 MP.

Methods, each run end to end per photo (read the JPEG with `dpe_hf.imageio.read_image`, enhance,
write a JPEG with `write_image`), in a warm process (one untimed warm-up photo first):

* guided          the network at long side 512, carried to full size by bilateral guided
                  upsampling (`dpe_hf.ops.guided.guided_upsample`), strip-wise from uint8;
* residual        the same network run, low-resolution residual upsampled and added strip-wise
                  from uint8 (`dpe_hf.ops.guided.residual_upsample`);
* float-residual  the earlier `dpe_hf.inference.enhance` path: the whole photo as a float tensor,
                  residual upsampled with `resize_to` (kept here as it was, for comparison);
* network-full    the network run directly on the full photo: only photos up to 4 MP (slower
                  and far more memory above that), and not at all with --quick;
* tiled           `dpe_hf.inference.enhance_array(method="tiled")`: the network on 1024 px tiles of
                  the full photo with the global feature of the copy at 512 (not in the default
                  --methods: meant for a GPU, minutes per 48 MP photo on a CPU);
* auto-exposure   `enhance_array(auto_exposure=True)`: guided, on the photo re-exposed first
                  (`dpe enhance --auto-exposure`; not in the default --methods): what the re-exposure
                  adds in time and memory. Its fidelity is against the network on the re-exposed copy.

Each (photo set, method) runs in a fresh subprocess, so that its peak RSS (`ru_maxrss`) is its
own; "idle RSS" is the process after imports and model loading, before the first photo.
Fidelity: PSNR between the full-size result downscaled to the network's size (INTER_AREA, as
`downscale_long_side`) and the network's own output at that size, median over the photos.

Model: `--model` (a folder, run folder, bundled name or hub id, as `dpe enhance --model`);
default the bundled `dpe-expertC` when this install has it, else a randomly initialised
`DPEGenerator(width=0.5)` saved to a temporary folder (said in the output: its output is close
to the identity, so fidelity numbers then say little about a trained model's).
`--truth`: a known full-size answer. On copies of the largest photos resized to `--truth-mp`
megapixels (small enough for the network to run on the whole photo), the network's own output
for the full photo is the answer the full-resolution methods approximate. Two such answers:
the network with the global feature it computes from the full photo itself, and with the one
of the copy at 512 (what `tiled` uses; the difference between the two is the effect of the
global feature alone). Prints PSNR of each method against both, the fidelity measure above,
and seconds per photo (in one warm process, network runs included), median over the photos;
"input" is the unenhanced photo, for scale.

`--batch-io`: `dpe enhance` on a batch of `--batch-images` 12 MP JPEGs in one call, two photos at
a time in worker threads (`--overlap-io on`) and one at a time (`--overlap-io off`), alternating,
`--repeats` times each, each in a fresh process after a one-photo warm-up (model loading not
timed); prints seconds per photo (median) and peak RSS.

`--proxy-edit`: the network still runs (its time counts) but its output is replaced by a fixed
local photo edit of the low-resolution copy (CLAHE on L*, tone curve, +30 % saturation), a
stand-in with real local contrast changes so that fidelity means something without a trained
model (network-full is then skipped).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # run from a checkout without installing

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
LONG_SIDE = 512
BASELINE_MAX_MP = 4.0
METHODS = ("guided", "residual", "float-residual", "network-full", "tiled", "auto-exposure")
DEFAULT_METHODS = ("guided", "residual", "float-residual", "network-full")


# --------------------------------------------------------------------------------------------
# worker: one (photo set, method) in its own process
# --------------------------------------------------------------------------------------------


def _rss_mb(field: str = "VmRSS") -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _worker(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from dpe_hf.imageio import read_image, write_image
    from dpe_hf.hub import load_generator
    from dpe_hf.ops import guided
    from dpe_hf.ops.exposure import even_exposure
    from dpe_hf.ops.resize import resize_long_side, resize_to

    if args.threads:
        torch.set_num_threads(args.threads)
    gen = load_generator(args.model).eval()
    files = [Path(p) for p in args.files]
    out_dir = Path(args.out_dir)
    idle = _rss_mb()

    def proxy_edit(low: np.ndarray) -> np.ndarray:
        """A local photo edit of float32 H x W x 3 in [0, 1] (see --proxy-edit)."""
        import cv2

        u8 = np.clip(low * 255 + 0.5, 0, 255).astype(np.uint8)
        lab = cv2.cvtColor(u8, cv2.COLOR_RGB2LAB)
        lab[..., 0] = cv2.createCLAHE(2.0, (8, 8)).apply(lab[..., 0])
        y = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB).astype(np.float32) / 255
        y = y + 0.3 * y * (1 - y) * (y - 0.25)
        m = y.mean(-1, keepdims=True)
        return np.clip(m + 1.3 * (y - m), 0, 1).astype(np.float32)

    @torch.inference_mode()
    def network(low: np.ndarray) -> np.ndarray:
        """uint8/uint16 H x W x 3 -> the generator's output, float32 H x W x 3 in [0, 1]."""
        scale = 255.0 if low.dtype == np.uint8 else 65535.0
        x = torch.from_numpy(low).permute(2, 0, 1)[None].float() / scale
        y = gen(x).clamp(0, 1)[0].permute(1, 2, 0).contiguous().numpy()
        return proxy_edit(low.astype(np.float32) / np.float32(scale)) if args.proxy_edit else y

    def to_uint(x: torch.Tensor, dtype) -> np.ndarray:
        scale = 255.0 if dtype == np.uint8 else 65535.0
        return (x[0].permute(1, 2, 0) * scale).round_().numpy().astype(dtype)

    @torch.inference_mode()
    def enhance(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
        """-> (full-size result, the network's own low-resolution output, stage times)."""
        stages = {}
        t = time.perf_counter()
        if args.method in ("guided", "residual"):
            low = guided.downscale_long_side(arr, LONG_SIDE)
            low_out = network(low)
            stages["net"] = time.perf_counter() - t
            t = time.perf_counter()
            fn = guided.guided_upsample if args.method == "guided" else guided.residual_upsample
            out = fn(arr, low, low_out)
            stages["carry"] = time.perf_counter() - t
            return out, low_out, stages
        if args.method in ("tiled", "auto-exposure"):
            from dpe_hf.inference import enhance_array

            out = enhance_array(gen, arr, method="tiled" if args.method == "tiled" else "guided",
                                auto_exposure=args.method == "auto-exposure")
            stages["net"] = time.perf_counter() - t
            return out, None, stages
        scale = 255.0 if arr.dtype == np.uint8 else 65535.0
        x = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / scale
        if args.method == "float-residual":  # dpe_hf.inference.enhance_tensor before the change
            low = resize_long_side(x, LONG_SIDE)
            out_low = gen(low).clamp(0, 1)
            if args.proxy_edit:
                out_low = torch.from_numpy(proxy_edit(low[0].permute(1, 2, 0).numpy())).permute(2, 0, 1)[None]
            stages["net"] = time.perf_counter() - t
            t = time.perf_counter()
            out = x if low.shape[-2:] == x.shape[-2:] else (x + resize_to(out_low - low, x.shape[-2:])).clamp(0, 1)
            result = to_uint(out, arr.dtype)
            stages["carry"] = time.perf_counter() - t
            return result, out_low[0].permute(1, 2, 0).numpy(), stages
        out = to_uint(gen(x).clamp(0, 1), arr.dtype)  # network-full
        stages["net"] = time.perf_counter() - t
        return out, None, stages

    def one(path: Path) -> dict:
        t0 = time.perf_counter()
        arr, meta = read_image(path)
        t_read = time.perf_counter() - t0
        out, low_out, stages = enhance(arr)
        t1 = time.perf_counter()
        write_image(out_dir / f"{path.stem}.{args.method}.jpg", out, meta)
        t_write = time.perf_counter() - t1
        total = time.perf_counter() - t0
        if low_out is None:  # network-full, tiled, auto-exposure: the network at its usual size
            seen = even_exposure(arr) if args.method == "auto-exposure" else arr
            low_out = network(guided.downscale_long_side(seen, LONG_SIDE))
        small = _unit(guided.downscale_long_side(out, LONG_SIDE))
        if small.shape != low_out.shape:  # float-residual's low copy may round its size differently
            small = resize_to(torch.from_numpy(small).permute(2, 0, 1), low_out.shape[:2]).permute(1, 2, 0).numpy()
        fid = _psnr(small, low_out)
        return {"file": path.name, "mp": arr.shape[0] * arr.shape[1] / 1e6, "time": total, "read": t_read,
                "write": t_write, **stages, "fidelity": fid}

    one(files[0])  # warm-up (untimed)
    rows = [one(p) for p in files]
    print(json.dumps({"rows": rows, "idle_mb": idle,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "threads": torch.get_num_threads()}))


def _unit(image):
    """uint8 / uint16 -> float64 in [0, 1]."""
    import numpy as np

    return image.astype(np.float64) / (255.0 if image.dtype == np.uint8 else 65535.0)


def _psnr(a, b) -> float:
    """PSNR in dB of two float images in [0, 1]."""
    import numpy as np

    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


# --------------------------------------------------------------------------------------------
# --truth: the methods against the network's own output for the full photo
# --------------------------------------------------------------------------------------------


def _truth_rows(files: list[Path], model: str) -> list[dict]:
    import numpy as np
    import torch

    from dpe_hf.imageio import read_image
    from dpe_hf.hub import load_generator
    from dpe_hf.inference import enhance_array
    from dpe_hf.ops.guided import downscale_long_side

    gen = load_generator(model).eval()

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(_unit(a).astype(np.float32)).permute(2, 0, 1)[None]

    @torch.inference_mode()
    def network(arr: np.ndarray, look: torch.Tensor | None = None) -> np.ndarray:
        y = gen(tensor(arr)) if look is None else gen(tensor(arr), global_feature=look)
        return np.round(y.clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)

    def timed(fn, *a, **kw):
        t = time.perf_counter()
        return fn(*a, **kw), time.perf_counter() - t

    enhance_array(gen, read_image(files[0])[0], method="guided")  # warm-up
    rows = []
    for path in files:
        arr, _ = read_image(path)
        low = downscale_long_side(arr, LONG_SIDE)
        low_out = _unit(network(low))
        with torch.inference_mode():
            look = gen.encode_global(tensor(low))
        outs = {"input": (arr, 0.0),
                "network, full photo, own global feature": timed(network, arr),
                "network, full photo, global feature of the 512 copy": timed(network, arr, look)}
        for method in ("guided", "residual", "tiled"):
            outs[method] = timed(enhance_array, gen, arr, method=method)
        own, with_look = (_unit(outs[k][0]) for k in list(outs)[1:3])
        for name, (out, seconds) in outs.items():
            rows.append({"file": path.name, "mp": arr.shape[0] * arr.shape[1] / 1e6, "method": name,
                         "seconds": seconds, "vs_own": _psnr(_unit(out), own),
                         "vs_512": _psnr(_unit(out), with_look),
                         "fidelity": _psnr(_unit(downscale_long_side(out, LONG_SIDE)), low_out)})
        print(f"  {path.name}: done", file=sys.stderr, flush=True)
    return rows


def _fmt_truth(rows: list[dict]) -> str:
    head = ["method", "s/photo", "PSNR vs full, own g (median/min)", "PSNR vs full, 512 g (median/min)",
            "fidelity at 512 (median/min)"]
    lines = [head]
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]

        def stat(key):
            values = [r[key] for r in mine]
            return f"{statistics.median(values):.2f} / {min(values):.2f}"

        seconds = statistics.median(r["seconds"] for r in mine)
        lines.append([method, f"{seconds:.2f}" if seconds else "-", stat("vs_own"), stat("vs_512"), stat("fidelity")])
    return _columns(lines)


# --------------------------------------------------------------------------------------------
# --batch-io: dpe enhance on a batch, two photos at a time (--overlap-io on) and one at a time
# --------------------------------------------------------------------------------------------


def _batch_worker(args: argparse.Namespace) -> None:
    from dpe_hf.batch import load_model, photo_share
    from dpe_hf.cli import build_parser, enhance

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    overlap = args.method != "no-overlap"
    # as dpe enhance loads it for this batch (each photo's share of the threads); once, outside the timing
    gen = load_model(args.model, "auto", "auto", photo_share(len(args.files), overlap)[1])
    flags = ["-o", args.out_dir, "--overwrite", "--overlap-io", "on" if overlap else "off"]
    parser = build_parser()
    enhance.run(parser.parse_args(["enhance", args.files[0], *flags]), generator=gen)  # warm-up
    t = time.perf_counter()
    code = enhance.run(parser.parse_args(["enhance", *args.files, *flags]), generator=gen)
    seconds = time.perf_counter() - t
    print(json.dumps({"code": code, "seconds": seconds, "photos": len(args.files),
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def _batch_io(files: list[Path], model: str, out_dir: Path, repeats: int, threads: int | None) -> str:
    runs: dict[str, list[dict]] = {"overlap": [], "no-overlap": []}
    for _ in range(repeats):
        for mode in runs:  # alternating, so that a busy spell of the machine hits both
            runs[mode].append(_run(mode, files, model, out_dir, threads, False, worker="--batch-worker"))
    lines = [["I/O", "photos", "s/photo (median)", "runs (s/photo)", "peak RSS MB"]]
    for mode, results in runs.items():
        ok = [r for r in results if "error" not in r]
        if not ok:
            lines.append([mode, "-", "-", "error: " + results[0]["error"], "-"])
            continue
        per = [r["seconds"] / r["photos"] for r in ok]
        lines.append([mode, str(ok[0]["photos"]), f"{statistics.median(per):.3f}",
                      " ".join(f"{x:.3f}" for x in per), f"{max(r['peak_mb'] for r in ok):.0f}"])
    return _columns(lines)


# --------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------


def _resized_copies(sources: list[Path], megapixels: float, count: int, folder: Path) -> list[Path]:
    from PIL import Image, ImageOps

    made = []
    for src in sources[:count]:
        dst = folder / f"{src.stem}_{megapixels:g}MP.jpg"
        if not dst.exists():
            with Image.open(src) as im:
                im = ImageOps.exif_transpose(im).convert("RGB")
                f = math.sqrt(megapixels * 1e6 / (im.width * im.height))
                im.resize((round(im.width * f), round(im.height * f)), Image.Resampling.BICUBIC).save(
                    dst, quality=92)
        made.append(dst)
    return made


def _default_model(tmp: Path) -> tuple[str, str]:
    from dpe_hf.hub import DEFAULT_MODEL, bundled_models

    if DEFAULT_MODEL in bundled_models():
        return DEFAULT_MODEL, f"bundled {DEFAULT_MODEL}"
    import torch

    from dpe_hf.models.generator import DPEGenerator

    torch.manual_seed(0)
    folder = tmp / "random-dpe-w0.5"
    DPEGenerator(width=0.5).save_pretrained(str(folder))
    return str(folder), ("RANDOM DPEGenerator(width=0.5), no bundled checkpoint in this install: its output "
                         "is near the identity, so fidelity is not representative of a trained model")


def _run(method: str, files: list[Path], model: str, out_dir: Path, threads: int | None, proxy: bool,
         worker: str = "--worker") -> dict:
    cmd = [sys.executable, __file__, worker, "--method", method, "--model", model, "--out-dir", str(out_dir),
           "--files", *map(str, files)]
    if threads:
        cmd += ["--threads", str(threads)]
    if proxy:
        cmd += ["--proxy-edit"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fmt_table(results: list[dict]) -> str:
    head = ["photos", "method", "n", "MP", "s/photo", "MP/s", "net s", "carry s", "peak RSS MB", "idle RSS MB",
            "fidelity dB (median/min)"]
    lines = [head]
    for r in results:
        if "error" in r or "skipped" in r:
            lines.append([r["set"], r["method"], "-", "-", "-", "-", "-", "-", "-", "-",
                          r.get("skipped") or "error: " + r["error"]])
            continue
        rows = r["rows"]
        med = lambda k: statistics.median(x.get(k, 0.0) for x in rows)  # noqa: E731
        fids = [x["fidelity"] for x in rows]
        lines.append([r["set"], r["method"], str(len(rows)), f"{med('mp'):.1f}", f"{med('time'):.3f}",
                      f"{statistics.median(x['mp'] / x['time'] for x in rows):.1f}", f"{med('net'):.3f}",
                      f"{med('carry'):.3f}" if "carry" in rows[0] else "-",
                      f"{r['peak_mb']:.0f}", f"{r['idle_mb']:.0f}",
                      f"{statistics.median(fids):.2f} / {min(fids):.2f}"])
    return _columns(lines)


def _columns(lines: list[list[str]]) -> str:
    """Rows of strings as aligned columns, a rule under the first (the header)."""
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    out = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--model", default=None)
    p.add_argument("--quick", action="store_true", help="2 photos at 12 MP only")
    p.add_argument("--sizes", default="native,12,24,48",
                   help="photo sets: 'native' (own size) and/or megapixels of resized copies")
    p.add_argument("--images", type=int, default=3, help="photos per resized set (12/24/48 MP)")
    p.add_argument("--native-images", type=int, default=0, help="photos at their own size (0: all)")
    p.add_argument("--baseline-images", type=int, default=2, help="photos (<= 4 MP) for network-full")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS), help=f"any of {','.join(METHODS)}")
    p.add_argument("--threads", type=int, default=None, help="torch threads in the workers (default: torch's)")
    p.add_argument("--proxy-edit", action="store_true",
                   help="replace the network's output by a fixed local edit (fidelity without a trained model)")
    p.add_argument("--truth", action="store_true", help="the methods against a known full-size answer")
    p.add_argument("--truth-mp", type=float, default=2.5, help="megapixels of the --truth photos")
    p.add_argument("--truth-images", type=int, default=6, help="photos for --truth")
    p.add_argument("--batch-io", action="store_true", help="dpe enhance with and without overlapped I/O")
    p.add_argument("--batch-images", type=int, default=6, help="12 MP photos per --batch-io batch")
    p.add_argument("--repeats", type=int, default=3, help="runs of each --batch-io mode")
    p.add_argument("--json", action="store_true")
    p.add_argument("--cli", action="store_true", help="the dpe enhance table (benchmarks/cli_speed.py; its options)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--batch-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--method", help=argparse.SUPPRESS)
    p.add_argument("--files", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--out-dir", help=argparse.SUPPRESS)
    if argv is None:
        argv = sys.argv[1:]
    if "--cli" in argv:
        from benchmarks import cli_speed

        return cli_speed.main([a for a in argv if a != "--cli"])
    args = p.parse_args(argv)
    if args.worker:
        _worker(args)
        return 0
    if args.batch_worker:
        _batch_worker(args)
        return 0

    folder = args.data / "target" / "debian"
    photos = sorted(folder.glob("*.jpg"))
    if not photos:
        print(f"no photos in {folder} (use --data)", file=sys.stderr)
        return 2
    methods = [m for m in args.methods.split(",") if m]
    from PIL import Image

    sizes = {}
    for f in photos:
        with Image.open(f) as im:
            sizes[f] = im.width * im.height / 1e6
    by_size = sorted(photos, key=lambda f: -sizes[f])

    with tempfile.TemporaryDirectory(prefix="dpe-fullres-") as tmp_name:
        tmp = Path(tmp_name)
        model, model_note = (args.model, args.model) if args.model else _default_model(tmp)
        if args.truth or args.batch_io:
            print(f"model: {model_note}", flush=True)
            print(f"cpu: {os.cpu_count()} cores, torch threads: {args.threads or 'default'}", flush=True)
        if args.truth:
            if args.threads:
                import torch

                torch.set_num_threads(args.threads)
            rows = _truth_rows(_resized_copies(by_size, args.truth_mp, args.truth_images, tmp), model)
            print(f"{args.truth_images} photos at {args.truth_mp:g} MP; answer: the network on the whole photo")
            print(_fmt_truth(rows))
            if args.json:
                print(json.dumps(rows, indent=1))
        if args.batch_io:
            out_dir = tmp / "batch-out"
            out_dir.mkdir()
            files = _resized_copies(by_size, 12, args.batch_images, tmp)
            print(f"dpe enhance on {len(files)} JPEGs of 12 MP (guided), {args.repeats} runs each")
            print(_batch_io(files, model, out_dir, args.repeats, args.threads))
        if args.truth or args.batch_io:
            return 0
        sets: list[tuple[str, list[Path]]] = []
        if args.quick:
            sets.append(("12 MP", _resized_copies(by_size, 12, 2, tmp)))
        else:
            for size in (x.strip() for x in args.sizes.split(",") if x.strip()):
                if size == "native":
                    native = photos if args.native_images <= 0 else photos[: args.native_images]
                    sets.append(("debian (own size)", native))
                else:
                    sets.append((f"{float(size):g} MP", _resized_copies(by_size, float(size), args.images, tmp)))
        out_dir = tmp / "out"
        out_dir.mkdir()
        print(f"model: {model_note}" + (" (output replaced by --proxy-edit)" if args.proxy_edit else ""), flush=True)
        print(f"cpu: {os.cpu_count()} cores, torch threads in workers: {args.threads or 'default'}", flush=True)
        results = []
        for set_name, files in sets:
            for method in methods:
                row = {"set": set_name, "method": method}
                run_files = files
                if method == "network-full":
                    small = [f for f in files if _megapixels(f) <= BASELINE_MAX_MP][: args.baseline_images]
                    if args.quick or not small or args.proxy_edit:
                        row["skipped"] = ("skipped: no network output with --proxy-edit" if args.proxy_edit else
                                          f"skipped: network on the full photo only up to {BASELINE_MAX_MP:g} MP")
                        results.append(row)
                        continue
                    run_files = small
                t = time.perf_counter()
                row.update(_run(method, run_files, model, out_dir, args.threads, args.proxy_edit))
                print(f"  {set_name:18s} {method:15s} done in {time.perf_counter() - t:.0f} s", file=sys.stderr,
                      flush=True)
                results.append(row)
        print(_fmt_table(results))
        if any(r.get("method") == "network-full" and "rows" in r for r in results):
            print(f"network-full: only photos up to {BASELINE_MAX_MP:g} MP ({args.baseline_images} per set)")
        if args.json:
            print(json.dumps(results, indent=1))
    return 0


def _megapixels(path: Path) -> float:
    from PIL import Image

    with Image.open(path) as im:
        return im.width * im.height / 1e6


if __name__ == "__main__":
    sys.exit(main())
