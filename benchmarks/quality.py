"""Paired quality benchmark on the FiveK dev pairs: PSNR / SSIM / ΔE00 against expert C,
and exposure consistency on the SICE scenes.

    python benchmarks/quality.py [--data ../shared/data] [--model M ...] [--ids a4514,a2803] [--json]
        [--previous REV] [--lut-from IDS] [--tone-from DIR] [--auto-exposure] [--contact-sheet [PNG]]
        [--failures N [--failures-sheet PNG]]

Reads DATA/fivek-dev/input/*.png and DATA/fivek-dev/expertC/*.png (the pairs, same names) and
prints one row per method with the mean over the pairs; the baselines are `dpe_hf.baselines`:

* identity          the input itself (the floor any enhancer must beat);
* auto-levels       each channel stretched so its 0.5 and 99.5 percentiles go to 0 and 1, clipped;
* PIL autocontrast  PIL.ImageOps.autocontrast(img, cutoff=0.5);
* fixed LUT         with `--lut-from IDS`: expert C's average look, one 33^3 colour LUT fitted to
                    map the inputs of the pairs IDS (e.g. those a model trained on) to expert C
                    and applied to every photo (`dpe_hf.baselines.FixedLut`, as `dpe lut`). It
                    adapts to nothing, so a model that chooses per photo should beat it;
* tone match        with `--tone-from DIR`: expert C's average tone, each channel's histogram
                    matched to the mean quantile curve of the photos in DIR (e.g.
                    target/fivek-expertC-256, retouches without their inputs; those of the pairs
                    scored are left out), `dpe_hf.baselines.ToneMatch`. It sets every photo's
                    brightness, contrast and colour balance to the expert's average;
* every --model     loaded with dpe_hf.hub.load_generator, run with dpe_hf.inference.enhance.

* dpe-expertC @REV  with `--previous REV`: the bundled model as committed at git revision REV,
                    beside the new one.
* M + auto exposure with `--auto-exposure`: every model again, each photo re-exposed first
                    (`dpe enhance --auto-exposure`, `dpe_hf.ops.exposure`).
* M + levels W      with `--levels W`: every model again, with W of auto-levels mixed into its
                    output (`dpe enhance --levels W`).

`--ids` restricts the pairs (e.g. to a held-out subset the models were not trained on).
Pairing and scoring are those of `dpe eval` (dpe_hf.evaluation). Column "harm" counts the pairs
that a method leaves more than 1 dB (PSNR) further from expert C than the input was, e.g. "3/14".

Exposure consistency (column "expo PSNR"): DATA/fullres/sice-scenes holds 16 scenes, each at 4
exposures (`<scene>_<k>_.jpg`); every exposure is enhanced at full size, the 4 results are
brought to long side 512 and the score is the mean PSNR over the 6 pairs of exposures of a
scene, averaged over the scenes. Higher means the result depends less on the camera's exposure.
No expert is involved: a method that returns a constant image scores inf, so read it beside
the paired scores. Caveat of the data: despite their names, the 4 SICE exposures of a scene
hardly differ (mean brightness within 4 % in 15 of 16 scenes, all dark) and are not aligned
(the camera moved between shots: in scene 661 the differences are edges), so leaving a photo
alone is nearly the most consistent thing to do, brightening or adding contrast amplifies the
differences, and darkening (crushing) them shrinks the differences and scores higher; expert C's
average look (`--lut-from`) darkens them. Column "expo mean" is the mean level (0-1) of the
method's results on these scenes, to read beside it.

Hence a second measure with real exposure differences (column "bracket PSNR"): every fivek-dev
input of the selected pairs is re-exposed by -1, -0.5, 0 and +0.5 EV in linear light (clipped,
as a camera clips; `dpe_hf.data.degrade.apply_edit`), and the same mean PSNR between the 4
enhanced results is taken. Identity scores what the exposures differ by.

And one with real cameras' exposures (column "seq PSNR"): DATA/source/sice-part1 holds SICE's
multi-exposure sequences as consecutive numbers (1.jpg, 2.jpg, ...: one scene from dark to
bright, then the next; 512x512). A new sequence starts where a file's 64 px grey copy, brightness
and contrast normalised, correlates below 0.6 with the previous file's, or where its mean level
falls below half the previous file's (the next scene's darkest frame); of each sequence the
frames whose mean level is within 0.05-0.7 (neither black nor blown out) are kept, sequences
with 3 or more such frames count, and `SEQUENCE_COUNT` of them, evenly spaced, are scored like
the brackets (mean PSNR between the enhanced frames of a sequence). These frames differ by the
camera's exposure, noise and clipping, as a shoot's do.

`--contact-sheet` draws, for each pair, input | each model's output | expert C (256 px tall);
`--failures N` draws the N pairs where the first model scores lowest, PSNR labelled.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as `python benchmarks/quality.py`: import from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (BRACKET_EV, BUNDLED, REPO_ROOT, SCENES, SUBSET, add_data_option,  # noqa: E402
                               contact_sheet, data_folder, exposure_bracket, fixed_lut_method, harm_count,
                               model_method, results_table, select_pairs)
from dpe_hf.baselines import auto_levels, autocontrast, identity  # noqa: E402
from dpe_hf.evaluation import evaluate_pairs, exposure_consistency  # noqa: E402

SEQUENCES = Path("source") / "sice-part1"
SEQUENCE_COUNT = 34
SEQUENCE_LEVELS = (0.05, 0.7)
EXPOSURE_COLUMN = ("expo_psnr", "expo PSNR", 2)
EXPOSURE_LEVEL_COLUMN = ("expo_level", "expo mean", 3)
BRACKET_COLUMN = ("bracket_psnr", "bracket PSNR", 2)
SEQUENCE_COLUMN = ("seq_psnr", "seq PSNR", 2)
DEFAULT_SHEET = REPO_ROOT / "docs" / "contact_sheet.png"
DEFAULT_FAILURES_SHEET = REPO_ROOT / "docs" / "failures.png"


def previous_model_method(rev: str):
    """The bundled model as committed at git revision `rev` (read with `git show`, loaded from a
    temporary folder): to compare a retrained model with the one it replaces."""
    from dpe_hf.errors import ModelLoadError

    with tempfile.TemporaryDirectory() as folder:
        for name in ("config.json", "model.safetensors"):
            spec = f"{rev}:checkpoints/{BUNDLED}/{name}"
            try:
                found = subprocess.run(["git", "-C", str(REPO_ROOT), "show", spec], capture_output=True)
            except FileNotFoundError:
                raise ModelLoadError(f"--previous {rev}: git is not installed") from None
            if found.returncode != 0:
                reason = found.stderr.decode(errors="replace").strip().splitlines()
                raise ModelLoadError(f"--previous {rev}: git show {spec} failed ({reason[-1] if reason else ''})")
            (Path(folder) / name).write_bytes(found.stdout)
        return model_method(folder)  # loads the weights now, before the folder goes


def tone_match_method(parser, folder: Path, scored: set[str]):
    """`ToneMatch` fitted on the photos of `folder`, without those of a scored pair (FiveK id)."""
    from dpe_hf.baselines import ToneMatch
    from dpe_hf.data.fivek import fivek_id
    from dpe_hf.imageio import list_images, read_image

    photos = [p for p in list_images(folder) if fivek_id(p.name) not in scored]
    if not photos:
        parser.error(f"--tone-from {folder}: no photos (other than the scored pairs')")
    print(f"tone match: {len(photos)} photos of {folder}", file=sys.stderr)
    return ToneMatch.fit(read_image(p)[0] for p in photos)


def sice_scenes(folder: Path) -> dict[str, list[Path]]:
    """{scene: its exposures, darkest first} from files named `<scene>_<k>_.jpg`."""
    scenes: dict[str, list[tuple[int, Path]]] = {}
    for path in sorted(folder.glob("*_*_.jpg")):
        match = re.fullmatch(r"(.+)_(\d+)_", path.stem)
        if match:
            scenes.setdefault(match.group(1), []).append((int(match.group(2)), path))
    return {scene: [p for _, p in sorted(found)] for scene, found in sorted(scenes.items())}


# -- contact sheets ---------------------------------------------------------------------------


class Outputs:
    """Each model's output per pair, computed once for both sheets."""

    def __init__(self, models: dict):
        self.models = models
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    def images(self, pair, names: list[str]) -> list[np.ndarray]:
        """input, the named models' outputs, expert C."""
        from dpe_hf.imageio import read_image

        stem, input_path, expert_path = pair
        image, _ = read_image(input_path)
        for name in names:
            if (stem, name) not in self._cache:
                self._cache[stem, name] = self.models[name](image)
        return [image, *(self._cache[stem, name] for name in names), read_image(expert_path)[0]]


def write_contact_sheet(path: Path, pairs, outputs: Outputs) -> None:
    names = list(outputs.models)
    rows = [(stem, outputs.images((stem, a, b), names)) for stem, a, b in pairs]
    _save(contact_sheet(rows, ["input", *names, "expert C"]), path)


def write_failures_sheet(path: Path, count: int, pairs, outputs: Outputs, scores: list[dict]) -> None:
    """The `count` pairs where the first model's PSNR is lowest, worst first."""
    name = next(iter(outputs.models))
    by_stem = {stem: (stem, a, b) for stem, a, b in pairs}
    worst = sorted(scores, key=lambda r: r["psnr"])[:count]
    rows = [(f"{r['name']}  PSNR {r['psnr']:.2f} dB", outputs.images(by_stem[r["name"]], [name])) for r in worst]
    _save(contact_sheet(rows, ["input", name, "expert C"]), path)


def _save(image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    print(f"wrote {path}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_option(parser, f"data folder holding {SUBSET}/ and {SCENES}/ (default: ../shared/data next to the repo)")
    parser.add_argument("--model", action="extend", nargs="+", default=[], metavar="M",
                        help="model folder, run folder, bundled name or hub repo id (repeatable)")
    parser.add_argument("--previous", metavar="REV",
                        help=f"also score checkpoints/{BUNDLED} as committed at this git revision")
    parser.add_argument("--ids", help="comma-separated stems to evaluate (default: all pairs)")
    parser.add_argument("--lut-from", metavar="IDS",
                        help="also score one LUT fitted to map these pairs' inputs to expert C")
    parser.add_argument("--tone-from", type=Path, metavar="DIR",
                        help="also score every photo's histogram matched to the average of DIR's photos")
    parser.add_argument("--levels", type=float, default=0.0, metavar="W",
                        help="also score every model with W of auto-levels mixed in (dpe enhance --levels)")
    parser.add_argument("--auto-exposure", action="store_true",
                        help="also score every model with each photo re-exposed first (dpe enhance --auto-exposure)")
    parser.add_argument("--no-exposure", action="store_true",
                        help=f"skip the exposure consistency ({SCENES}, brackets, {SEQUENCES})")
    parser.add_argument("--contact-sheet", type=Path, nargs="?", const=DEFAULT_SHEET, metavar="PNG",
                        help="write input | each model's output | expert C for every pair "
                             f"(default path {DEFAULT_SHEET.relative_to(REPO_ROOT)})")
    parser.add_argument("--failures", type=int, default=0, metavar="N",
                        help="write the N pairs where the first model scores lowest")
    parser.add_argument("--failures-sheet", type=Path, default=DEFAULT_FAILURES_SHEET, metavar="PNG",
                        help=f"where --failures writes (default {DEFAULT_FAILURES_SHEET.relative_to(REPO_ROOT)})")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser


def load_models(specs: list[str], previous: str | None, auto_exposure: bool = False, levels: float = 0.0) -> dict:
    """{row name: method}, with a "+ auto exposure" twin of each if asked; raises ModelLoadError."""
    models = {spec: model_method(spec) for spec in specs}
    if previous:
        models[f"{BUNDLED} @{previous}"] = previous_model_method(previous)
    if levels:
        models.update({f"{name} + levels {levels:g}": functools.partial(method, levels=levels)
                       for name, method in list(models.items())})
    if auto_exposure:
        models.update({f"{name} + auto exposure": functools.partial(method, auto_exposure=True)
                       for name, method in list(models.items())})
    return models


def score_pairs(pairs, methods: dict) -> tuple[list[dict], list[dict]]:
    rows, failed = [], []
    for name, method in methods.items():
        result = evaluate_pairs(pairs, method, on_error=lambda m: print(f"error: {m}", file=sys.stderr))
        failed += result.failed
        if result.rows:
            rows.append({"name": name, **result.mean, "per_image": result.rows})
    return rows, failed


def add_harm_counts(rows: list[dict]) -> None:
    """Each row gets "harm", e.g. "3/14": the pairs its method leaves more than 1 dB (PSNR) further
    from expert C than the input was (`common.harm_count`)."""
    inputs = next((row["per_image"] for row in rows if row["name"] == "identity"), [])
    for row in rows:
        row["harm"] = harm_count(row["per_image"], inputs)


def add_exposure_scores(rows: list[dict], methods: dict, scenes: dict) -> None:
    """Each row gets "expo_psnr" (mean over scenes), "expo_per_scene" and "expo_level", the mean
    level (0-1) of its results: darkening these dark scenes shrinks the differences between
    their exposures and so raises expo PSNR, hence the two are read together."""
    from dpe_hf.imageio import to_float32

    for row in rows:
        levels = []

        def recorded(image, method=methods[row["name"]]):
            out = method(image)
            levels.append(float(to_float32(out).mean()))
            return out

        result = exposure_consistency(scenes, recorded)
        row["expo_psnr"], row["expo_per_scene"] = result["mean"], result["per_scene"]
        row["expo_level"] = sum(levels) / len(levels)


def add_bracket_scores(rows: list[dict], methods: dict, pairs) -> None:
    """Each row gets "bracket_psnr": exposure consistency over `BRACKET_EV` re-exposures of the inputs."""
    from dpe_hf.evaluation import bracket_consistency

    # made once for all methods: 4 small 8-bit copies per pair
    brackets = {stem: [exposure_bracket(first, ev) for ev in BRACKET_EV] for stem, first, _ in pairs}
    scenes = {stem: [lambda b=b: b for b in images] for stem, images in brackets.items()}
    for row in rows:
        row["bracket_psnr"] = bracket_consistency(scenes, methods[row["name"]])["mean"]


def sice_sequences(folder: Path, count: int = SEQUENCE_COUNT) -> dict[str, list[Path]]:
    """{first file's stem: the sequence's usable frames}, `count` sequences evenly spaced (see the
    module docstring); empty if `folder` has no numbered JPEGs."""
    from PIL import Image

    files = sorted((p for p in folder.glob("*.jpg") if p.stem.isdigit()), key=lambda p: int(p.stem))
    sequences: list[list[tuple[Path, float]]] = []
    previous, previous_level = None, 0.0
    for path in files:
        with Image.open(path) as im:
            grey = np.asarray(im.convert("L").resize((64, 64), Image.Resampling.BOX), np.float64) / 255
        shape, level = (grey - grey.mean()) / (grey.std() + 1e-6), float(grey.mean())
        # a sequence runs from dark to bright: a frame half as bright as the last starts the next one
        if previous is None or float((shape * previous).mean()) < 0.6 or level < previous_level / 2:
            sequences.append([])
        sequences[-1].append((path, level))
        previous, previous_level = shape, level
    low, high = SEQUENCE_LEVELS
    usable = [[p for p, level in seq if low <= level <= high] for seq in sequences]
    usable = [seq for seq in usable if len(seq) >= 3]
    if not usable:
        return {}
    picked = np.linspace(0, len(usable) - 1, min(count, len(usable))).round().astype(int)
    return {usable[i][0].stem: usable[i] for i in sorted(set(picked.tolist()))}


def add_sequence_scores(rows: list[dict], methods: dict, sequences: dict) -> None:
    """Each row gets "seq_psnr": exposure consistency over the frames of each SICE sequence."""
    from dpe_hf.imageio import read_image
    from dpe_hf.evaluation import bracket_consistency

    loaders = {name: [lambda p=p: read_image(p)[0] for p in paths] for name, paths in sequences.items()}
    for row in rows:
        row["seq_psnr"] = bracket_consistency(loaders, methods[row["name"]])["mean"]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    data = data_folder(parser, args.data)
    pairs = select_pairs(parser, data / SUBSET, args.ids)
    from dpe_hf.errors import ModelLoadError

    try:
        models = load_models(args.model, args.previous, args.auto_exposure, args.levels)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if (args.contact_sheet or args.failures) and not models:
        parser.error("--contact-sheet and --failures show models' outputs: give --model or --previous")
    methods = {"identity": identity, "auto-levels": auto_levels, "PIL autocontrast": autocontrast}
    if args.lut_from:
        methods["fixed LUT"] = fixed_lut_method(select_pairs(parser, data / SUBSET, args.lut_from))
    if args.tone_from:
        methods["tone match"] = tone_match_method(parser, args.tone_from, {stem for stem, _, _ in pairs})
    methods.update(models)

    start = time.perf_counter()
    rows, failed = score_pairs(pairs, methods)
    add_harm_counts(rows)
    scenes = {} if args.no_exposure else sice_scenes(data / SCENES)
    if scenes:
        add_exposure_scores(rows, methods, scenes)
    elif not args.no_exposure:
        print(f"note: no scenes in {data / SCENES}; exposure consistency left out", file=sys.stderr)
    if not args.no_exposure:
        add_bracket_scores(rows, methods, pairs)
    sequences = {} if args.no_exposure else sice_sequences(data / SEQUENCES)
    if sequences:
        add_sequence_scores(rows, methods, sequences)
    outputs = Outputs(models)
    if args.contact_sheet:
        write_contact_sheet(args.contact_sheet, pairs, outputs)
    if args.failures:
        first = next(r for r in rows if r["name"] == next(iter(models)))
        write_failures_sheet(args.failures_sheet, args.failures, pairs, outputs, first["per_image"])

    if args.json:
        print(json.dumps({"data": str(data / SUBSET), "ids": [p[0] for p in pairs],
                          "scenes": {k: [str(p) for p in v] for k, v in scenes.items()},
                          "sequences": {k: [str(p) for p in v] for k, v in sequences.items()}, "methods": rows,
                          "failed": failed, "seconds": round(time.perf_counter() - start, 1)}, indent=2))
    else:
        print(f"{SUBSET}: {len(pairs)} pairs, mean over pairs (vs expert C)"
              + (f"; expo PSNR: {len(scenes)} {SCENES.name}, mean PSNR between exposures of a scene" if scenes else "")
              + ("; bracket PSNR: the inputs at -1/-0.5/0/+0.5 EV" if not args.no_exposure else "")
              + (f"; seq PSNR: {len(sequences)} sequences of {SEQUENCES.name}, "
                 f"{sum(map(len, sequences.values()))} frames" if sequences else ""))
        print(results_table(rows, extra=[EXPOSURE_COLUMN, EXPOSURE_LEVEL_COLUMN] * bool(scenes)
                            + [BRACKET_COLUMN] * (not args.no_exposure) + [SEQUENCE_COLUMN] * bool(sequences)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
