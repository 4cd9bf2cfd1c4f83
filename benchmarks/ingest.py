#!/usr/bin/env python3
"""Ingestion throughput and memory, side by side in one run (ratios matter, not absolute times).

Prints, for 4K60 H.264 videos like the Walking Tours sources (real footage, upscaled, 2 s GOP),
1 minute and 10 minutes long, with the default settings:
  plain     the best plain decode of the file: one process, PyAV with automatic threading on
            all cores (the figure a user compares with; the ratio is against it)
  units     PyAV decode-only of the build's own units, processes and threads
  build     source frames/s of a full `wtpipe shards build` (probe, decode, shards, manifest)
  naive     (1 minute) decode every frame to full-size RGB, resize kept ones with PIL,
            JPEG-encode: with the same processes and units, and in one process
and the peak RSS of the build (driver and largest worker) for the 1-minute vs the 10-minute input.

Usage: python benchmarks/ingest.py [--workers N] [--minutes 1 10] [--skip-rss]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction

import av
from PIL import Image

from wtpipe.demo import media as testmedia
from wtpipe.process import available_cores
from wtpipe.shards.build import ShardBuilder, unit_length
from wtpipe.shards.settings import BuildSettings
from wtpipe.video.decode import stored_size
from wtpipe.video.grid import FrameGrid
from wtpipe.video.probe import VideoInfo, probe
from wtpipe.video.units import Unit, plan_units


def make_4k(minutes: int) -> str:
    """A 4K H.264 clip of ``minutes``: 10 s encoded once, then its packets repeated (no re-encode)."""
    base = os.path.join(testmedia.cache_dir(), "derived", "bench_4k60_10s.mp4")
    if not os.path.exists(base):
        frames = list(testmedia.source_frames(testmedia.fetch_sources()["bigbuckbunny.mp4"]))
        loop = (frames[(i // 2) % len(frames)] for i in range(600))  # 25 fps footage at 60 fps
        testmedia.encode(
            loop,
            base,
            "libx264",
            (3840, 2160),
            Fraction(60),
            options={"preset": "ultrafast", "crf": "23", "g": "120"},
        )
    path = os.path.join(testmedia.cache_dir(), "derived", f"bench_4k60_{minutes}min.mp4")
    if not os.path.exists(path):
        tmp = f"{path}.tmp-{os.getpid()}.mp4"
        with av.open(base) as src, av.open(tmp, "w") as dst:
            stream_in = src.streams.video[0]
            stream_out = dst.add_stream_from_template(stream_in)
            span = stream_in.duration
            for copy in range(minutes * 6):
                src.seek(0, stream=stream_in)
                for packet in src.demux(stream_in):
                    if packet.dts is None:
                        continue
                    packet.pts += copy * span
                    packet.dts += copy * span
                    packet.stream = stream_out
                    dst.mux(packet)
        os.replace(tmp, path)
    return path


def _decode_unit(info_json: dict, unit_json: dict, threads: int, naive: bool) -> int:
    """Decode the frames a unit owns; ``naive`` also turns every frame into full-size RGB and
    resizes and JPEG-encodes the grid frames with PIL."""
    info, unit = VideoInfo.from_json(info_json), Unit.from_json(unit_json)
    settings = BuildSettings()
    grid = FrameGrid(info.first_pts, info.time_base, settings.fps_out)
    size = stored_size(info, settings.short_side)
    count, want = 0, grid.first_at_or_after(unit.start)
    with av.open(info.path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        if unit.start > info.first_pts:
            container.seek(unit.start, stream=stream, backward=True)
        for frame in container.decode(stream):
            if frame.pts < unit.start:
                continue
            if unit.end is not None and frame.pts >= unit.end:
                break
            count += 1
            if naive:
                rgb = frame.to_ndarray(format="rgb24")
                if grid.index(frame.pts) >= want:
                    want = grid.index(frame.pts) + 1
                    image = Image.fromarray(rgb).resize(size, Image.BILINEAR)
                    image.save(io.BytesIO(), format="JPEG", quality=settings.jpeg_quality)
    return count


def plain_decode(path: str) -> tuple[int, float]:
    """Every frame, one process, FFmpeg's automatic threading (as many threads as it likes)."""
    start = time.monotonic()
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = 0
        frames = sum(1 for _ in container.decode(stream))
    return frames, time.monotonic() - start


def decode_units(path: str, workers: int, unit_seconds: float, naive: bool) -> tuple[int, float]:
    """The same units, processes and threads as the build; ``workers=1`` with one unit is a
    single-process tool."""
    info = probe(path)
    units = plan_units(info, "bench", unit_length(unit_seconds, info.duration_s, workers))
    threads = max(1, available_cores() // min(workers, len(units)))
    start = time.monotonic()
    with cf.ProcessPoolExecutor(workers) as pool:
        frames = sum(
            pool.map(
                _decode_unit,
                [info.to_json()] * len(units),
                [u.to_json() for u in units],
                [threads] * len(units),
                [naive] * len(units),
            )
        )
    return frames, time.monotonic() - start


def build(path: str, workers: int, settings: BuildSettings) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as out:
        report = ShardBuilder([path], out, settings, workers=workers, progress=False).run()
    return report.source_frames, report.seconds


def peak_rss(path: str, workers: int, unit_seconds: float) -> tuple[float, float]:
    """Peak RSS in MB of the build driver and of its largest worker, in a fresh process.

    The driver's figure is VmHWM (ru_maxrss survives exec, so it would report this script's
    own peak); workers are the maximum over the driver's children.
    """
    code = (
        "import json, resource, sys, tempfile\n"
        "from wtpipe.shards.build import ShardBuilder\nfrom wtpipe.shards.settings import BuildSettings\n"
        "with tempfile.TemporaryDirectory() as out:\n"
        f"    ShardBuilder([{path!r}], out, BuildSettings(unit_seconds={unit_seconds}), workers={workers},"
        " progress=False).run()\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(json.dumps([int(hwm), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    driver, worker = json.loads(result.stdout.strip().splitlines()[-1])
    return driver / 1024, worker / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=available_cores())
    parser.add_argument("--minutes", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--skip-rss", action="store_true")
    args = parser.parse_args()
    settings = BuildSettings()
    print(
        f"workers {args.workers} on {available_cores()} cores; stored {settings.fps} fps, short side "
        f"{settings.short_side}, {settings.frame_format}, units of up to {settings.unit_seconds:g} s"
    )
    for minutes in args.minutes:
        path = make_4k(minutes)
        rows = {
            "plain PyAV, auto threads": plain_decode(path),
            "units (decode only)": decode_units(
                path, args.workers, settings.unit_seconds, naive=False
            ),
            "build (wtpipe shards)": build(path, args.workers, settings),
        }
        if minutes == 1:
            rows["naive, same processes"] = decode_units(
                path, args.workers, settings.unit_seconds, naive=True
            )
            rows["naive, one process"] = decode_units(path, 1, 1e9, naive=True)
        top = rows["plain PyAV, auto threads"][0] / rows["plain PyAV, auto threads"][1]
        print(f"-- {path} (3840x2160 H.264, 60 fps, {minutes} min)")
        for name, (frames, seconds) in rows.items():
            rate = frames / seconds
            print(
                f"{name:<26} {frames:>6} frames {seconds:>7.1f} s {rate:>7.1f} frames/s  {rate / top:5.2f} x plain"
            )
    if not args.skip_rss:
        one, ten = make_4k(1), make_4k(10)
        a, b = peak_rss(one, args.workers, 300.0), peak_rss(ten, args.workers, 300.0)
        print(f"peak RSS  1 min: driver {a[0]:.0f} MB, worker {a[1]:.0f} MB")
        print(
            f"peak RSS 10 min: driver {b[0]:.0f} MB, worker {b[1]:.0f} MB  "
            f"(ratio driver {b[0] / a[0]:.2f}, worker {b[1] / a[1]:.2f})"
        )


if __name__ == "__main__":
    main()
