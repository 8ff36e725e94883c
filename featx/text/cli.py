"""The command line's text parts: ``featx embed --text-file``, ``featx classify``, ``--text`` queries.

``featx embed`` becomes a text job when ``--text-file`` is given, or when every INPUT is a ``.txt``
file and the model has a text tower: each line is a row (see `featx.text.lines`), embedded by the
text tower in the joint image-text space. ``featx classify INPUT... --model M --labels a,b,c``
scores zero-shot labels per image: printed, or written to ``--output`` as Parquet shards (the
same engine as ``embed``: error rows, resume, ``--engine ray``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..errors import ConfigError, InputError

__all__ = ["add_text_arguments", "text_job_requested", "cmd_embed_text", "add_classify_parser", "cmd_classify",
           "print_search"]


def add_text_arguments(embed: argparse.ArgumentParser) -> None:
    """``featx embed``'s text options."""
    embed.add_argument("--text-file", action="append", default=[], metavar="FILE",
                       help="a text file whose lines are embedded as rows by the model's text tower (repeatable; "
                            "row path FILE#L<line>, the line in the text column); .txt INPUTs do the same "
                            "(default: none)")


def _has_text_tower(model: str, hub: dict[str, Any]) -> bool:
    from ..families import family_for
    from ..hub import HubOptions
    from ..models.loading import read_config

    model_type = read_config(model, HubOptions(**hub)).get("model_type")
    try:
        return family_for(model_type).text_tower(model_type) is not None
    except ConfigError:
        return False


def text_job_requested(args: argparse.Namespace, hub: dict[str, Any]) -> bool:
    """Whether ``featx embed`` runs the text tower: ``--text-file``, or only ``.txt`` INPUTs for a
    model that has a text tower."""
    if getattr(args, "text_file", None):
        return True
    inputs = list(args.inputs)
    return bool(inputs) and all(i.lower().endswith(".txt") and not i.startswith("@") for i in inputs) \
        and _has_text_tower(args.model, hub)


def cmd_embed_text(args: argparse.Namespace, hub: dict[str, Any]) -> int:
    """``featx embed`` of text lines (see the module docstring)."""
    from ..cli_args import check_inputs_for, check_job_args
    from .embed import TextTowerEmbedder
    from .jobs import TextEmbedJob

    args.inputs = list(args.inputs) + list(args.text_file)
    check_job_args(args)
    if args.windows:
        raise ConfigError("--windows applies to audio models only")
    if args.processor_option:
        raise ConfigError("-p options are for image/audio processors; a text job takes none")
    extensions = check_inputs_for(args, "text")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    embedder = TextTowerEmbedder(args.model, pool=args.pool, normalize=args.normalize, dtype=args.dtype,
                                 device=args.device, weights=args.engine == "local", **hub)
    job = TextEmbedJob(embedder, dtype=args.dtype, batch_size=args.batch_size, fmt=args.format,
                       npy_dtype=args.npy_dtype, hub_options={k: v for k, v in hub.items() if k != "revision"})
    return _run(args, job, extensions)


def _run(args: argparse.Namespace, job: Any, extensions: Any) -> int:
    """Run ``job`` on ``--engine`` into ``--output``; the exit status."""
    from ..cli import _job_exit, _run_options
    from ..cli_args import ENGINES, engine_module

    engine = engine_module(args.engine)
    keyword = ENGINES[args.engine][1]
    extra = {keyword: engine.options_from_args(args)} if keyword and hasattr(engine, "options_from_args") else {}
    summary = engine.run(job, args.inputs, args.output, _run_options(args, extensions, args.batch_size), **extra)
    return int(_job_exit(summary))


# ---- featx classify -------------------------------------------------------------------------
def add_classify_parser(sub: Any) -> None:
    """The ``classify`` subcommand."""
    from ..cli_args import (_DTYPE_HELP, _DTYPES, ENGINES, EPILOG, _add_hub_options, _add_job_options, _positive,
                            add_engine_arguments)

    p = sub.add_parser("classify", help="zero-shot labels of images (CLIP/SigLIP)", epilog=EPILOG,
                       description="Score candidate labels for each image with a CLIP/SigLIP checkpoint; print "
                                   "the best ones, or write every score to OUT (resumable Parquet shards).")
    p.add_argument("-m", "--model", required=True, help="a full CLIP/SigLIP checkpoint folder or hub id owner/name")
    _add_hub_options(p, "model")
    _add_job_options(p)
    for action in p._actions:  # printing is the default: --output is optional here
        if action.dest == "output":
            action.required = False
            action.help = "write every input's scores to this folder of Parquet shards (default: print them)"
    p.add_argument("--labels", required=True, help="candidate labels, comma-separated: cat,dog,a red car")
    p.add_argument("--template", default="This is a photo of {}.",
                   help="the text each label is put into ({} is the label) (default: %(default)s)")
    p.add_argument("-k", type=_positive, default=5, help="labels printed per input, best first (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON lines (default: a table)")
    p.add_argument("--batch-size", type=_positive, default=32, help="images per model call (default: %(default)s)")
    p.add_argument("--dtype", choices=_DTYPES, default="auto", help=_DTYPE_HELP)
    p.add_argument("--device", default="auto",
                   help="auto (CUDA when available, else CPU), cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--engine", choices=tuple(ENGINES), default="local",
                   help="with --output: local (this machine) or ray (a Ray cluster) (default: %(default)s)")
    add_engine_arguments(p)


def _labels(text: str) -> list[str]:
    from .zero_shot import check_labels

    return check_labels(text)


def cmd_classify(args: argparse.Namespace) -> int:
    """``featx classify`` (see the module docstring)."""
    from ..cli import EXIT_FAILED_INPUTS, EXIT_OK
    from ..cli_args import check_inputs_for, hub_kwargs
    from ..embedding import Embedder
    from ..engine.inputs import check_specs
    from .embed import load_text_embedder
    from .jobs import ClassifyJob
    from .zero_shot import ZeroShotScorer

    labels = _labels(args.labels)
    if "{}" not in args.template:
        raise ConfigError(f"--template must contain {{}} (where the label goes), got {args.template!r}")
    hub = hub_kwargs(args)
    check_specs(args.inputs)
    if not args.inputs:
        raise InputError("no INPUT given")
    if args.output is not None:
        from ..engine.state import check_output

        check_output(args.output, overwrite=args.overwrite)
        _check_same_labels(args.output, labels, args.template, args.overwrite)
    extensions = check_inputs_for(args, "image")
    options = dict(args.processor_option)
    text = load_text_embedder(args.model, dtype=args.dtype, device=args.device, **hub)
    scorer = ZeroShotScorer(text, labels, args.template)
    local = args.output is None or args.engine == "local"
    embedder = Embedder(args.model, pool="joint", normalize=True, dtype=args.dtype, device=args.device,
                        weights=local, allow_private_urls=args.allow_private_urls, **hub, **options)
    if args.output is None:
        return _print_scores(args, embedder, scorer, extensions, EXIT_OK, EXIT_FAILED_INPUTS)
    job = ClassifyJob(embedder, scorer, dtype=args.dtype, processor_options=options, batch_size=args.batch_size,
                      hub_options={k: v for k, v in hub.items() if k != "revision"})
    return _run(args, job, extensions)


def _check_same_labels(out: str, labels: list[str], template: str, overwrite: bool) -> None:
    """Resuming OUT with other labels would mix score columns of different meaning: refused."""
    from ..engine.state import read_manifest

    manifest = read_manifest(out) if os.path.isdir(out) else None
    if overwrite or not manifest or manifest.get("kind") != "classification":
        return
    old = (manifest.get("labels"), manifest.get("hypothesis_template"))
    if old != (labels, template):
        raise ConfigError(f"{out} already holds scores of the labels {old[0]} with the template {old[1]!r}; "
                          f"use another --output, the same --labels/--template to resume, or --overwrite")


def _print_scores(args: argparse.Namespace, embedder: Any, scorer: Any, extensions: Any, ok: int,
                  failed_status: int) -> int:
    import numpy as np

    from ..engine.inputs import iter_inputs

    items = iter_inputs(args.inputs, column=args.column, extensions=extensions)
    listed = []
    for item in items:
        if args.limit is not None and len(listed) >= args.limit:
            break
        listed.append(item)
    failed = 0
    good = [item for item in listed if item.error is None]
    results = iter(embedder.iter_embed([item.src for item in good], batch_size=args.batch_size,
                                       workers=args.workers, errors="return"))
    for item in listed:
        error = item.error
        result = next(results) if error is None else None
        if result is not None and result.error is not None:
            error = result.error
        if error is not None:
            failed += 1
            print(json.dumps({"path": item.key, "error": error}) if args.json else f"{item.key}\terror: {error}")
            continue
        assert result is not None
        ranked = scorer.ranked(scorer.scores(np.asarray(result.embedding)[None])[0])[: args.k]
        if args.json:
            print(json.dumps({"path": item.key, "results": ranked}, ensure_ascii=False))
        else:
            print(item.key + "\t" + "  ".join(f"{r['label']} {r['score']:.4f}" for r in ranked))
    sys.stdout.flush()
    return failed_status if failed else ok


def print_search(args: argparse.Namespace, results: list[Any]) -> None:
    """``featx search``'s output: file queries first, then ``--text`` ones, each ranked on its own."""
    asked = [("query", q) for q in args.queries] + [("text", t) for t in args.texts]
    if args.json:
        payload = [{kind: q, "results": [h.to_dict() for h in hits]} for (kind, q), hits in zip(asked, results)]
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    for (kind, q), hits in zip(asked, results):
        print(f"{kind}: {q}")
        for rank, h in enumerate(hits, 1):
            where = f"  [{h.start}:{h.end}]" if h.start is not None else ""
            said = f"  {h.text}" if h.text is not None else ""
            print(f"{rank:>4}  {h.score:.4f}  {h.where()}{where}{said}")
