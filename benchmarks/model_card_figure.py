"""The model card's picture of known failure cases, drawn from photos we may redistribute.

    python benchmarks/model_card_figure.py [--model dpe-expertC] [--out checkpoints/dpe-expertC/failures.jpg]
        [--auto-exposure]

FiveK photos cannot be shown outside research (their licence), so the card's pictures use the
Debian wallpaper copies in `examples/` (CC-BY-4.0 / CC0, attribution in examples/ATTRIBUTION.md):

* one row per example photo: input | output, to show what the model does to photos that were
  already well exposed (it pushes their colour and brightness further);
* one row per exposure of `--bracket` (default fig_bowl.jpg) re-exposed by -1, -0.5, 0 and
  +0.5 EV in linear light: input | output. A perfectly exposure-invariant enhancer would give
  four equal outputs; the printed mean PSNR between the four outputs (as quality.py's "bracket
  PSNR") says how far from that the model is, beside the same number for the four inputs;
* one row for `--dark` (default living_room.jpg) underexposed by 2.5 EV, as a dark indoor or
  night photo: does the model brighten it or crush it? Its mean brightness is printed.

With the data folder at hand, the mean brightness of one very dark, noisy real scene,
`--dark-scene` (default SICE 101_2_ in ../shared/data/fullres/sice-scenes), is printed too (not
drawn: SICE is for research only). `--auto-exposure` prints the numbers again with every photo
re-exposed first (`dpe enhance --auto-exposure`); the picture stays the model's own.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python benchmarks/model_card_figure.py`: import from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (BRACKET_EV, BUNDLED, DEFAULT_DATA, REPO_ROOT, SCENES, contact_sheet,  # noqa: E402
                               exposure_bracket, model_method)

EXAMPLES = REPO_ROOT / "examples"
THUMB_HEIGHT = 192
UNDEREXPOSED_EV = -2.5
DARK_SCENE = DEFAULT_DATA / SCENES / "101_2_.jpg"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=BUNDLED)
    parser.add_argument("--bracket", default="fig_bowl.jpg", help="example photo to re-expose")
    parser.add_argument("--dark", default="living_room.jpg", help="example photo to underexpose")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "checkpoints" / BUNDLED / "failures.jpg")
    parser.add_argument("--dark-scene", type=Path, default=DARK_SCENE,
                        help="a very dark real photo whose brightness in and out is printed (if it exists)")
    parser.add_argument("--auto-exposure", action="store_true",
                        help="also print the numbers with each photo re-exposed first")
    args = parser.parse_args(argv)

    from dpe_hf.imageio import read_image

    enhance = model_method(args.model)
    photos = {path.name: read_image(path)[0] for path in sorted(EXAMPLES.glob("*.jpg"))}
    rows = [(name, [image, enhance(image)]) for name, image in photos.items()]
    inputs = [exposure_bracket(EXAMPLES / args.bracket, ev) for ev in BRACKET_EV]
    outputs = [enhance(image) for image in inputs]
    for ev, image, output in zip(BRACKET_EV, inputs, outputs):
        rows.append((f"{args.bracket} re-exposed {ev:+.1f} EV", [image, output]))
    dark = exposure_bracket(EXAMPLES / args.dark, UNDEREXPOSED_EV)
    dark_output = enhance(dark)
    rows.append((f"{args.dark} underexposed {UNDEREXPOSED_EV:+.1f} EV", [dark, dark_output]))
    sheet = contact_sheet(rows, ["input", args.model], height=THUMB_HEIGHT)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=85)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")
    print_measures(args, enhance, inputs, outputs, dark, dark_output, photos[args.dark])
    if args.auto_exposure:
        print("with --auto-exposure:")
        even = functools.partial(enhance, auto_exposure=True)
        print_measures(args, even, inputs, [even(image) for image in inputs], dark, even(dark), photos[args.dark])
    return 0


def print_measures(args, enhance, bracket, outputs, dark, dark_output, dark_as_shot) -> None:
    """The bracket's spread (its `outputs` by `enhance`), and the brightness of the underexposed
    photo and of the dark scene."""
    from dpe_hf.imageio import read_image, to_float32
    from dpe_hf.evaluation import bracket_consistency

    spread_in, spread_out = (bracket_consistency({args.bracket: [lambda a=a: a for a in images]})["mean"]
                             for images in (bracket, outputs))
    print(f"{args.bracket} at {', '.join(f'{ev:+.1f}' for ev in BRACKET_EV)} EV: mean PSNR between "
          f"the outputs {spread_out:.2f} dB, between the inputs {spread_in:.2f} dB")
    print(f"{args.dark} at {UNDEREXPOSED_EV:+.1f} EV: mean brightness {dark.mean() / 255:.3f} in, "
          f"{dark_output.mean() / 255:.3f} out (the photo as it was: {dark_as_shot.mean() / 255:.3f})")
    if args.dark_scene.is_file():  # any photo a user names, so 8 or 16 bits
        scene = read_image(args.dark_scene)[0]
        print(f"{args.dark_scene.name}: mean brightness {to_float32(scene).mean():.3f} in, "
              f"{to_float32(enhance(scene)).mean():.3f} out")


if __name__ == "__main__":
    sys.exit(main())
