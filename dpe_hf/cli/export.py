"""`dpe export onnx`: the generator as an ONNX model, checked against PyTorch."""

from __future__ import annotations

import sys
from pathlib import Path

from dpe_hf.cli.common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    MODEL_HELP,
    error,
    int_range,
    load_model,
    refuse_existing_file,
)


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a model for other tools (ONNX)",
                       description="Export a model for other tools.")
    targets = p.add_subparsers(dest="target", metavar="FORMAT", required=True)
    onnx = targets.add_parser(
        "onnx", help="an ONNX model with dynamic batch, height and width",
        description="Write the generator as an ONNX model (input 'image', output 'enhanced': "
                    "(B,3,H,W) float32 in [0,1], any H and W; the output is not clipped). Needs "
                    "the [export] extra (onnx). The file is checked with onnxruntime "
                    "against PyTorch before this command succeeds.")
    onnx.add_argument("--model", metavar="PATH_OR_REPO_ID", help=MODEL_HELP)
    onnx.add_argument("-o", "--output", required=True, metavar="FILE.onnx", help="the ONNX file to write")
    onnx.add_argument("--opset", type=int_range(17), default=17, help="ONNX opset, 17 or newer (default 17)")
    onnx.add_argument("--overwrite", action="store_true", help="replace the file if it exists")
    onnx.set_defaults(func=run_onnx)


def run_onnx(args) -> int:
    out = Path(args.output)
    if refuse_existing_file(out, args.overwrite):
        return EXIT_USAGE
    try:
        import onnxruntime  # noqa: F401  (checked here: the exporter needs onnx, the check onnxruntime)
        import onnx  # noqa: F401
    except ImportError as exc:
        error(f"ONNX export needs the [export] extra: pip install 'dpe_hf[export]' ({exc.name} is missing)")
        return EXIT_USAGE
    generator = load_model(args.model)
    if generator is None:
        return EXIT_USAGE
    if not hasattr(generator, "select_bn"):
        error(f"{args.model}: already an exported model")
        return EXIT_USAGE
    import torch

    from dpe_hf.export.onnx import OnnxGenerator, export_onnx

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        export_onnx(generator, out, opset=args.opset)
    except OSError as exc:
        error(f"{out}: cannot write ({exc.strerror or exc})")
        return EXIT_USAGE
    x = torch.rand(1, 3, 67, 91, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        difference = (OnnxGenerator(out)(x) - generator(x)).abs().max().item()
    if not difference <= 1e-3:
        error(f"{out}: onnxruntime and PyTorch differ by up to {difference:.2g} on a test image; "
              "the file is written but should not be trusted")
        return EXIT_SOME_FAILED
    print(f"wrote {out} (opset {args.opset}; onnxruntime vs PyTorch at 67x91: max |diff| {difference:.1e})",
          file=sys.stderr)
    return EXIT_OK
