"""Human-readable description of a shard directory (from its manifest) and of a build."""

from __future__ import annotations

from typing import Any


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return ""


def describe(manifest: dict[str, Any]) -> str:
    """Totals, then one line per video, then dead footage and failures."""
    t = manifest["totals"]
    s = manifest["settings"]
    lines = [
        f"{t['videos']} video(s), {t['source_hours']:.3f} h of source -> {t['frames']} frames "
        f"({t['stored_hours']:.3f} h at {s['fps']} fps, short side {s['short_side']}, {s['frame_format']})",
        f"{t['samples']} segments in {t['shards']} shards, {_size(t['bytes'])}, "
        f"{_size(t['bytes_per_frame'])} per stored frame; dead footage removed: {t['dead_hours'] * 60:.1f} min",
        "",
        f"{'video':<28} {'codec':<8} {'size':>10} {'hours':>7} {'segments':>8} {'frames':>7} {'dead s':>7}",
    ]
    for v in manifest["videos"]:
        lines.append(
            f"{v['id'][:28]:<28} {v['codec'][:8]:<8} {v['width']:>5}x{v['height']:<4} "
            f"{v['duration_s'] / 3600:>7.3f} {v['segments']:>8} {v['frames_stored']:>7} "
            f"{v['dead_s']:>7.1f}"
        )
    for v in manifest["videos"]:
        for d in v["dead"]:
            kept = " (kept)" if v["dead_kept"] else ""
            lines.append(
                f"dead: {v['id']} {d['start_s']:.1f}-{d['end_s']:.1f}s {d['reason']}{kept}"
            )
    for f in manifest["failures"]:
        lines.append(f"FAILED: {f['path']}: {f['problem']}")
    return "\n".join(lines)
