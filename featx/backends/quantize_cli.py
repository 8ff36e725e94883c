"""``featx quantize``: the command line of `featx.backends.quantize` (argparse only at import)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..cli_types import positive_int as _positive

__all__ = ["add_quantize_parser", "cmd_quantize", "format_report"]

# `featx.backends.quantize.METHODS`/`TYPES`, spelled out: building the parser imports no torch
# (tests/backends/test_quantize.py checks that they agree).
METHODS = ("minmax", "percentile", "entropy")
TYPES = ("u8s8-reduced", "u8s8", "u8u8", "s8s8")


def _cosine(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def add_quantize_parser(sub: Any) -> None:
    """Register ``featx quantize`` on the ``featx`` subcommands."""
    p = sub.add_parser(
        "quantize", help="calibrate a static int8 graph on your own inputs (for --backend onnx --dtype int8)",
        description="Calibrate a static int8 ONNX graph of MODEL on INPUTs and cache it, so that "
                    "`featx embed --backend onnx --dtype int8` (and load_model(..., backend='onnx', dtype='int8')) "
                    "run it instead of dynamic int8. Some inputs are held out to measure it: prints its cosine to "
                    "float32 and speed next to dynamic int8's. Layers that lose most are kept in float32 until the "
                    "held-out mean cosine reaches --target-cosine.")
    p.add_argument("model", help="local checkpoint folder or hub id owner/name")
    p.add_argument("--calibrate", nargs="+", required=True, metavar="INPUT",
                   help="files, folders, globs or @list.txt of inputs like the ones you will embed")
    p.add_argument("--samples", type=_positive, default=256,
                   help="inputs read (calibration and held out together) (default: %(default)s)")
    p.add_argument("--held-out", type=_positive, help="inputs kept for measuring (default: a sixth, 2 to 64)")
    p.add_argument("--target-cosine", type=_cosine, default=0.998,
                   help="held-out mean cosine to float32 to reach (default: %(default)s)")
    p.add_argument("--batch-size", type=_positive, default=16, help="inputs per batch (default: %(default)s)")
    p.add_argument("--method", action="append", choices=METHODS, dest="methods",
                   help="calibration method to try; repeatable (default: all: " + ", ".join(METHODS) + ")")
    p.add_argument("--types", action="append", choices=TYPES, dest="types",
                   help="activation/weight int types to try; repeatable (default: " + ", ".join(TYPES[:-1]) + ")")
    p.add_argument("--max-float-layers", type=int,
                   help="at most this many weight layers kept in float32 (default: half of them)")
    p.add_argument("--no-smooth", action="store_false", dest="smooth",
                   help="do not try moving LayerNorm outlier channels into the next layers' weights "
                        "(default: tried when under the target, kept if it measures better)")
    p.add_argument("--output", metavar="FILE.onnx", help="also write the calibrated graph here (default: cache only)")
    p.add_argument("--report", metavar="FILE.json", help="write the accuracy report here as JSON (default: printed only)")
    p.add_argument("--threads", type=_positive, help="ONNX Runtime threads (default: its own choice)")
    p.add_argument("--json", action="store_true", help="print the report as JSON (default: a table)")
    p.add_argument("--cache-dir", metavar="DIR", help="Hugging Face cache folder for a hub model "
                   "(default: the Hugging Face cache)")
    p.add_argument("--revision", help="branch, tag or commit of a hub model (default: main)")


def format_report(report: Any) -> str:
    """The report as a small table."""
    r = report.to_dict() if hasattr(report, "to_dict") else report
    speed = r["items_per_s"]
    lines = [
        f"model            {r['model']} ({r['model_type']})",
        (f"inputs           {r['calibration_inputs']} calibration, {r['held_out_inputs']} held out"
         + (f", {len(r['skipped'])} skipped" if r["skipped"] else "")),
        (f"chosen           {r['method']} calibration, {r['types']}{', smoothed' if r['smoothed'] else ''}; "
         f"{r['quantized_layers']} layers int8, "
         f"{len(r['kept_float32'])} kept float32"),
        f"target cosine    {r['target_cosine']} ({'reached' if r['reached_target'] else 'NOT reached'})",
        f"graph            {r['graph']}" + (f"\noutput           {r['output']}" if r["output"] else ""),
        "",
        f"{'held out':<14}{'mean cos':>10}{'min cos':>10}{'top-5':>8}{'items/s':>10}{'x float32':>11}",
    ]
    for label, acc, key in (("float32", None, "float32"), ("int8 dynamic", r["dynamic"], "int8-dynamic"),
                            ("int8 static", r["static"], "int8-static")):
        cos = (f"{acc['mean_cosine']:>10.5f}{acc['min_cosine']:>10.5f}{acc['top5_overlap']:>8.3f}" if acc
               else f"{'1':>10}{'1':>10}{'1':>8}")
        lines.append(f"{label:<14}{cos}{speed[key]:>10.1f}{speed[key] / speed['float32']:>11.2f}")
    if r["kept_float32"]:
        lines.append("kept float32: " + ", ".join(r["kept_float32"]))
    return "\n".join(lines)


def cmd_quantize(args: argparse.Namespace) -> int:
    """Run ``featx quantize``; exit 0 (also when the target is not reached: the report says so)."""
    from .quantize import METHODS, TYPES, calibrate_int8

    hub = {k: v for k, v in (("cache_dir", args.cache_dir), ("revision", args.revision)) if v is not None}
    report = calibrate_int8(args.model, args.calibrate, samples=args.samples, held_out=args.held_out,
                            target_cosine=args.target_cosine, batch_size=args.batch_size,
                            methods=tuple(args.methods or METHODS), types=tuple(args.types or TYPES),
                            max_float_layers=args.max_float_layers, smooth=args.smooth, output=args.output, report=args.report,
                            threads=args.threads, **hub)
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return 0
