"""What the benchmark scripts share: the data folder and its fivek-dev pairs, model loading, the
baselines as methods, the harm count, exposure brackets, contact sheets and the results table.

A method is a function from an H x W x 3 image (uint8 / uint16) to the enhanced image.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np

from dpe_hf.evaluation import format_table, pair_by_stem

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
SUBSET = "fivek-dev"
SCENES = Path("fullres") / "sice-scenes"
BUNDLED = "dpe-expertC"
BRACKET_EV = (-1.0, -0.5, 0.0, 0.5)
THUMB_HEIGHT = 256
HARM_DB = 1.0  # a photo is harmed when a method leaves it this much further (PSNR) from the expert than the input


# -- data -------------------------------------------------------------------------------------


def add_data_option(parser, help: str | None = None) -> None:
    parser.add_argument("--data", type=Path, default=None,
                        help=help or f"data folder holding {SUBSET}/ (default: ../shared/data next to the repo)")


def data_folder(parser, data: Path | None) -> Path:
    """`data`, or the default folder; exits through `parser` unless it holds fivek-dev/{input,expertC}."""
    if data is None:
        if not DEFAULT_DATA.is_dir():
            parser.error(f"no data folder at {DEFAULT_DATA}; pass --data DIR (the folder that holds {SUBSET}/)")
        data = DEFAULT_DATA
    root = data / SUBSET
    if not (root / "input").is_dir() or not (root / "expertC").is_dir():
        parser.error(f"{root}: expected input/ and expertC/ folders in it")
    return data


def select_pairs(parser, root: Path, ids: str | None):
    """[(stem, input path, expert C path)] of `root`, restricted to the comma-separated `ids`."""
    pairs = pair_by_stem(root / "input", root / "expertC").pairs
    if ids:
        wanted = [s.strip() for s in ids.split(",") if s.strip()]
        unknown = sorted(set(wanted) - {stem for stem, _, _ in pairs})
        if unknown:
            parser.error(f"--ids: no pair named {', '.join(unknown)} in {root}")
        pairs = [p for p in pairs if p[0] in wanted]
    return pairs


# -- methods ----------------------------------------------------------------------------------


def model_method(spec: str):
    """The model `spec` (folder, run folder, bundled name or hub id) run by dpe_hf.inference.enhance."""
    from dpe_hf.hub import load_generator
    from dpe_hf.inference import enhance

    return functools.partial(enhance, load_generator(spec))


def fixed_lut_method(pairs):
    """Expert C's average look over `pairs` (stem, input path, expert path): `dpe_hf.baselines.FixedLut`."""
    from dpe_hf.baselines import FixedLut
    from dpe_hf.imageio import read_image

    return FixedLut.fit((read_image(first)[0], read_image(expert)[0]) for _, first, expert in pairs)


def edited(image: np.ndarray, params) -> np.ndarray:
    """`image` (H x W x 3 uint8 / uint16) under one global edit (`dpe_hf.data.degrade.EditParams`,
    e.g. an exposure or a white-balance change in linear light), as 8-bit."""
    import torch

    from dpe_hf.data.degrade import apply_edit
    from dpe_hf.imageio import to_float32

    y = apply_edit(torch.from_numpy(to_float32(image)).permute(2, 0, 1), params)
    return (y.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)


def exposure_bracket(path: Path, ev: float) -> np.ndarray:
    """The photo at `path` re-exposed by `ev` stops in linear light, as 8-bit."""
    from dpe_hf.data.degrade import EditParams
    from dpe_hf.imageio import read_image

    return edited(read_image(path)[0], EditParams(exposure_ev=ev))


# -- scores -----------------------------------------------------------------------------------


def harm_count(per_image: list[dict], inputs: list[dict], margin_db: float = HARM_DB) -> str:
    """"harmed/scored": of the photos scored both for a method (`per_image`) and as they are
    (`inputs`, the identity's rows; each row {"name": stem, "psnr": dB}), how many the method
    leaves more than `margin_db` further from the expert than the input was."""
    as_is = {row["name"]: row["psnr"] for row in inputs}
    scored = [row for row in per_image if row["name"] in as_is]
    harmed = sum(row["psnr"] < as_is[row["name"]] - margin_db for row in scored)
    return f"{harmed}/{len(scored)}"


def results_table(rows: list[dict], extra=()) -> str:
    """`dpe_hf.evaluation.format_table` of one row per method, with a last column "harm" (the
    rows' "harm" entries, blank where a row has none)."""
    lines = format_table(rows, name_header="method", mean=False, encoding=sys.stdout.encoding,
                         extra=extra).splitlines()
    cells = ["harm", *(row.get("harm", "") for row in rows)]
    width = max(map(len, cells))
    return "\n".join(f"{line}  {cell:>{width}}" for line, cell in zip(lines, cells))


# -- contact sheets ---------------------------------------------------------------------------


def _thumbnail(image: np.ndarray, height: int):
    from PIL import Image

    from dpe_hf.imageio import from_float, to_float32

    im = Image.fromarray(from_float(to_float32(image)))  # uint8, whatever the method returned
    width = max(1, round(im.width * height / im.height))
    return im.resize((width, height), Image.Resampling.LANCZOS)


def contact_sheet(rows: list[tuple[str, list[np.ndarray]]], columns: list[str], height: int = THUMB_HEIGHT):
    """One row of thumbnails per (label, images), each `height` px tall and centred in a cell as
    wide as the widest; `columns` label the cells, the row label sits above each row."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    thumbs = [[_thumbnail(image, height) for image in images] for _, images in rows]
    cell = max(t.width for row in thumbs for t in row)
    pad, text = 4, 16
    sheet = Image.new("RGB", (len(columns) * (cell + pad) + pad, text + len(rows) * (text + height + pad)),
                      "white")
    draw = ImageDraw.Draw(sheet)
    for j, name in enumerate(columns):
        draw.text((pad + j * (cell + pad), 2), name, fill="black", font=font)
    for i, ((label, _), row) in enumerate(zip(rows, thumbs)):
        top = text + i * (text + height + pad)
        draw.text((pad, top + 2), label, fill="black", font=font)
        for j, thumb in enumerate(row):
            sheet.paste(thumb, (pad + j * (cell + pad) + (cell - thumb.width) // 2, top + text))
    return sheet
