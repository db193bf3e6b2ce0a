"""Regenerate the demo's example photos in `examples/` and their `examples/ATTRIBUTION.md`.

The photos are Debian wallpapers (lomiri-wallpapers) whose licences allow redistribution with
attribution; each is read upright (EXIF orientation applied), downscaled to a long side of
768 px and written as a JPEG at quality 85 without EXIF (the ICC profile is kept).

    python benchmarks/make_examples.py [--source ../shared/data/target/debian] [--out examples]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from dpe_hf.imageio import read_image, write_image

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "target" / "debian"
LONG_SIDE = 768
QUALITY = 85
MAX_BYTES = 200_000

# output name -> source file; chosen for variety: landscape, indoor low light, close-up, backlight
PICKS = {
    "mountain_meadow.jpg": "lomiri_aitzgorri_by_Aitzol_Berasategi.jpg",
    "living_room.jpg": "lomiri_Wine_by_Jakkub_Mede.jpg",
    "fig_bowl.jpg": "lomiri_Picture_0B_by_freespace.jpg",
    "dandelions.jpg": "lomiri_seeding_by_Clements_Engelhardt.jpg",
}
# licences that allow redistribution of a modified copy with attribution
ALLOWED = ("CC0-1.0", "CC-BY-4.0", "CC-BY-SA-4.0", "CC-BY-SA-3.0")
LICENSE_URLS = {
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "CC-BY-SA-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "CC-BY-SA-3.0": "https://creativecommons.org/licenses/by-sa/3.0/",
}


def downscale(arr: np.ndarray, long_side: int) -> np.ndarray:
    if arr.dtype != np.uint8:
        arr = ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)
    h, w = arr.shape[:2]
    scale = long_side / max(h, w)
    if scale >= 1:
        return arr
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(arr).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=ROOT / "examples")
    args = parser.parse_args(argv)

    with open(args.source / "LICENSES.tsv", newline="", encoding="utf-8") as fh:
        licences = {row["file"]: row for row in csv.DictReader(fh, delimiter="\t")}
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, source in PICKS.items():
        info = licences[source]
        if info["license"] not in ALLOWED:
            raise SystemExit(f"{source}: licence {info['license']} is not one we redistribute")
        arr, meta = read_image(args.source / source, max_pixels=None)
        small = downscale(arr, LONG_SIDE)
        dest = write_image(args.out / name, small, dataclasses.replace(meta, exif=None, alpha=None),
                           quality=QUALITY)
        size = dest.stat().st_size
        if size >= MAX_BYTES:
            raise SystemExit(f"{dest}: {size} bytes, over the {MAX_BYTES} byte budget")
        print(f"{dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}: "
              f"{small.shape[1]}x{small.shape[0]}, {size / 1000:.0f} kB  <- {source}")
        rows.append((name, source, info))

    lines = [
        "# Example photos",
        "",
        "Downscaled copies (long side 768 px, JPEG quality 85, EXIF removed) of wallpapers shipped",
        "by Debian; regenerate them with `python benchmarks/make_examples.py`. Each keeps its",
        "original licence; the changes made are the downscaling and re-encoding.",
        "",
        "| File | Source | Debian package | Author | Licence |",
        "|---|---|---|---|---|",
    ]
    for name, source, info in rows:
        lic = info["license"]
        lines.append(f"| `{name}` | `{source}` | {info['package']} | {info['author_or_copyright']} "
                     f"| [{lic}]({LICENSE_URLS[lic]}) |")
    (args.out / "ATTRIBUTION.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
