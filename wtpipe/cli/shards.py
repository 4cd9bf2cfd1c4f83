"""``wtpipe shards``: build, verify, describe and preview WebDataset shards of long videos."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from typing import TYPE_CHECKING

from wtpipe.cli import make_parser
from wtpipe.shards import FRAME_FORMATS
from wtpipe.shards.settings import BuildSettings
from wtpipe.video import BACKENDS

if TYPE_CHECKING:
    from wtpipe.shards.build import BuildReport

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_settings_arguments(p: argparse.ArgumentParser) -> None:
    """The options that change the shards' bytes (BuildSettings); shared with ``wtpipe submit ingest``."""
    d = BuildSettings()
    p.add_argument(
        "--fps",
        default=d.fps,
        help=f"stored frames per second, e.g. 4 or 30000/1001 (default {d.fps})",
    )
    p.add_argument(
        "--size",
        type=int,
        default=d.short_side,
        dest="short_side",
        help=f"stored frame short side in pixels, never upscaled (default {d.short_side})",
    )
    p.add_argument(
        "--segment-seconds",
        type=float,
        default=d.segment_seconds,
        help=f"longest segment (one sample) in seconds (default {d.segment_seconds:g})",
    )
    p.add_argument(
        "--format",
        choices=FRAME_FORMATS,
        default=d.frame_format,
        dest="frame_format",
        help=f"frames as JPEG files or one short H.264 mp4 per segment (default {d.frame_format})",
    )
    p.add_argument(
        "--quality",
        type=int,
        default=d.jpeg_quality,
        dest="jpeg_quality",
        help=f"JPEG quality (default {d.jpeg_quality})",
    )
    p.add_argument(
        "--shard-mb",
        type=float,
        default=d.shard_mb,
        help=f"target shard size in MB (default {d.shard_mb:g})",
    )
    p.add_argument(
        "--min-shards",
        type=int,
        default=d.min_shards,
        help="at least this many shards, e.g. 2 x ranks x loader workers (default 1)",
    )
    p.add_argument(
        "--unit-seconds",
        type=float,
        default=d.unit_seconds,
        help=f"work-unit length: one long video is split among workers (default {d.unit_seconds:g})",
    )
    p.add_argument(
        "--backend", choices=BACKENDS, default=d.backend, help="decoder (decord: H.264/HEVC only)"
    )
    p.add_argument(
        "--keep-dead", action="store_true", help="keep blank/frozen stretches (still reported)"
    )
    p.add_argument(
        "--dead-min-seconds",
        type=float,
        default=d.dead_min_seconds,
        help=f"shortest blank/frozen stretch treated as dead (default {d.dead_min_seconds:g})",
    )
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the shard mixing (default 0)")


def settings_from(args: argparse.Namespace) -> BuildSettings:
    """BuildSettings from parsed options; ValueError names every bad value."""
    names = {f.name for f in fields(BuildSettings)}
    return BuildSettings(**{k: v for k, v in vars(args).items() if k in names})


def _build_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build",
        help="decode videos into sharded WebDataset segments",
        description="Decode long videos into WebDataset shards of frame segments. "
        "Re-running the same command resumes an interrupted build.",
    )
    p.add_argument(
        "inputs", nargs="+", metavar="VIDEO_OR_DIR", help="video files or directories of them"
    )
    p.add_argument("--out", required=True, help="output directory for shards and manifest.json")
    add_settings_arguments(p)
    p.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: CPU count)"
    )
    p.add_argument("--overwrite", action="store_true", help="discard an existing build in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _phase_parsers(sub: argparse._SubParsersAction) -> None:
    text = (
        "decode some units of a build planned by `wtpipe submit ingest` (what one array task runs); "
        "units already staged are skipped"
    )
    p = sub.add_parser(
        "stage", help=text, description=text[0].upper() + text[1:] + ". Exit 1 if a unit failed."
    )
    p.add_argument("dir", help="the build's output directory (holds .work/plan.json)")
    p.add_argument(
        "--units", nargs="+", required=True, metavar="UNIT", help="unit names from the plan"
    )
    p.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: usable cores)"
    )
    text = "cut the staged units of a planned build into shards and write the manifest (the job after the array)"
    p = sub.add_parser(
        "assemble", help=text, description=text[0].upper() + text[1:] + ". Exit 1 on any problem."
    )
    p.add_argument("dir", help="the build's output directory (holds .work/plan.json)")
    p.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: usable cores)"
    )


def _summary(report: BuildReport) -> str:
    from wtpipe.shards.info import describe

    lines = [describe(report.manifest)]
    if report.seconds and (report.source_frames or report.resumed_units):
        rate = report.source_frames / report.seconds
        lines.append(
            f"\n{report.source_frames} source frames decoded in {report.seconds:.1f}s "
            f"({rate:.1f} frames/s); {report.resumed_units} units reused from an earlier run"
        )
    if report.passed_over:
        shown = ", ".join(report.passed_over[:5]) + (", ..." if len(report.passed_over) > 5 else "")
        lines.append(
            f"passed over {len(report.passed_over)} file(s) in the input folders that are not "
            f"videos by extension: {shown}"
        )
    lines.append(f"output: {report.out}")
    return "\n".join(lines)


def _run_build(args: argparse.Namespace) -> int:
    from wtpipe.shards.build import BuildError, ShardBuilder

    try:
        settings = settings_from(args)
    except ValueError as err:
        print(f"wtpipe-shards build: {err}", file=sys.stderr)
        return EXIT_USAGE
    builder = ShardBuilder(
        args.inputs,
        args.out,
        settings,
        workers=args.workers,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    try:
        report = builder.run()
    except BuildError as err:
        print(f"wtpipe-shards build: {err}", file=sys.stderr)
        return EXIT_USAGE
    return _finish("build", report)


def _finish(command: str, report: BuildReport) -> int:
    print(_summary(report))
    if report.problems:
        print(
            f"wtpipe-shards {command}: {len(report.problems)} problem(s), listed above and under "
            f"'failures' in {report.out}/manifest.json",
            file=sys.stderr,
        )
    return EXIT_FAILED if report.problems else EXIT_OK


def _run_stage(args: argparse.Namespace) -> int:
    from wtpipe.shards.build import BuildError, ShardBuilder

    try:
        reused, failures = ShardBuilder.resume(args.dir, args.workers).stage(args.units)
    except BuildError as err:
        print(f"wtpipe-shards stage: {err}", file=sys.stderr)
        return EXIT_USAGE
    for problem in failures:
        print(f"wtpipe-shards stage: {problem}", file=sys.stderr)
    print(
        f"staged {len(args.units) - reused - len(failures)} unit(s), {reused} already staged, "
        f"{len(failures)} failed"
    )
    return EXIT_FAILED if failures else EXIT_OK


def _run_assemble(args: argparse.Namespace) -> int:
    from wtpipe.shards.build import BuildError, ShardBuilder

    try:
        report = ShardBuilder.resume(args.dir, args.workers).assemble()
    except BuildError as err:
        print(f"wtpipe-shards assemble: {err}", file=sys.stderr)
        return EXIT_USAGE
    return _finish("assemble", report)


def _run_verify(args: argparse.Namespace) -> int:
    from wtpipe.shards.verify import verify

    try:
        problems = verify(args.dir, progress=not args.quiet)
    except (FileNotFoundError, ValueError) as err:
        print(f"wtpipe-shards verify: {err}", file=sys.stderr)
        return EXIT_FAILED
    for problem in problems:
        print(f"wtpipe-shards verify: {problem}", file=sys.stderr)
    print(
        "OK: every shard matches the manifest and every frame decodes"
        if not problems
        else f"FAILED: {len(problems)} problem(s)"
    )
    return EXIT_FAILED if problems else EXIT_OK


def _run_info(args: argparse.Namespace) -> int:
    from wtpipe.shards.info import describe
    from wtpipe.shards.read import load_manifest

    try:
        print(describe(load_manifest(args.dir)))
    except (FileNotFoundError, ValueError) as err:
        print(f"wtpipe-shards info: {err}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _run_preview(args: argparse.Namespace) -> int:
    from wtpipe.shards.preview import contact_sheet

    try:
        count = contact_sheet(args.dir, args.out, tiles=args.tiles)
    except (FileNotFoundError, ValueError, OSError) as err:
        print(f"wtpipe-shards preview: {err}", file=sys.stderr)
        return EXIT_FAILED
    print(f"wrote {args.out} ({count} frames)")
    return EXIT_OK


def main(argv: list[str] | None = None, prog: str = "wtpipe-shards") -> int:
    parser = make_parser(prog, __doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _build_parser(sub)
    _phase_parsers(sub)
    text = "check shards against manifest.json: sha256, sizes, sample and frame counts, every frame decodes"
    p = sub.add_parser(
        "verify", help=text, description=text[0].upper() + text[1:] + ". Exit 1 on any problem."
    )
    p.add_argument("dir", help="a wtpipe shards output directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    text = (
        "totals and per-video figures of a shard directory (hours, segments, frames, dead footage)"
    )
    p = sub.add_parser("info", help=text, description=text[0].upper() + text[1:] + ".")
    p.add_argument("dir", help="a wtpipe shards output directory")
    text = "write a contact sheet PNG of frames sampled across the shards"
    p = sub.add_parser("preview", help=text, description=text[0].upper() + text[1:] + ".")
    p.add_argument("dir", help="a wtpipe shards output directory")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--tiles", type=int, default=24, help="number of frames (default 24)")
    args = parser.parse_args(argv)
    handler = {
        "build": _run_build,
        "stage": _run_stage,
        "assemble": _run_assemble,
        "verify": _run_verify,
        "info": _run_info,
        "preview": _run_preview,
    }
    return handler[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
