"""DoRA's views in the paper recipe against the official augmentation, as distributions.

The reference re-derives, in numpy, which random choices DoRA_ICLR24's ``DataAugmentationDINO``
makes for a clip (``main.py``, with torchvision's ``RandomResizedCrop.get_params`` written out):
one 300-px pre-crop of the clip (scale 0.2-1 of the frame), one 224-px global crop of it (scale
0.4-1) flipped with p 0.5 for the whole clip; per frame colour jitter p 0.8, greyscale p 0.2 and
blur p 0.1; per frame and local crop a 112-px crop of the pre-crop (scale 0.05-0.4), jitter,
greyscale, blur p 0.5 and no flip. wtpipe's planner draws the same number of views of the same
real frames from ``configs/dora_vits16_wt.yaml``. Compared: the crop's area as a fraction of the
full frame and its aspect ratio in frame pixels (two-sample Kolmogorov-Smirnov), and per view kind
the rates of flip, jitter, greyscale, blur and solarisation (exact where the official rate is 0 or
1, a two-proportion test otherwise). Both sides are seeded, so the p-values are fixed numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from wtpipe.config import load_config
from wtpipe.data.transforms import ClipViews, MultiCropSpec, view_spec
from wtpipe.ops.augment import F
from wtpipe.train.config import TrainConfig

CLIPS, FRAMES = 1500, 2
HEIGHT, WIDTH = 480, 640  # the bundled campus clip's frames
P = 1e-3  # a deviation must be this unlikely before the test calls it one
OFFICIAL = {
    "global": {"flip": 0.5, "jitter": 0.8, "gray": 0.2, "blur": 0.1, "solarize": 0.0},
    "local": {"flip": 0.0, "jitter": 0.8, "gray": 0.2, "blur": 0.5, "solarize": 0.0},
}


def resized_crop_box(
    rng: np.random.Generator, height: int, width: int, scale: tuple[float, float]
) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop.get_params: ten tries at a box of a uniform area fraction and
    a log-uniform aspect ratio in [3/4, 4/3] that fits, else the centre crop of the clamped ratio."""
    area = height * width
    low, high = math.log(3 / 4), math.log(4 / 3)
    for _ in range(10):
        target = area * rng.uniform(*scale)
        ratio = math.exp(rng.uniform(low, high))
        w, h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    ratio = width / height
    if ratio < 3 / 4:
        w, h = width, round(width / (3 / 4))
    elif ratio > 4 / 3:
        h, w = height, round(height * 4 / 3)
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def official_views(seed: int) -> dict[str, dict[str, np.ndarray]]:
    """Area fraction, aspect ratio and the applied operations of every view the official code draws."""
    rng = np.random.default_rng(seed)
    out = {
        kind: {k: [] for k in ("area", "aspect", "flip", "jitter", "gray", "blur", "solarize")}
        for kind in ("global", "local")
    }

    def add(
        kind: str,
        pre: tuple[int, int, int, int],
        box: tuple[int, int, int, int],
        flip: bool,
        blur_p: float,
    ):
        _, _, ph, pw = pre
        _, _, h, w = box
        row = out[kind]
        row["area"].append(ph * pw / (HEIGHT * WIDTH) * h * w / 300**2)
        row["aspect"].append((w * pw) / (h * ph))
        row["flip"].append(flip)
        row["jitter"].append(rng.random() < 0.8)
        row["gray"].append(rng.random() < 0.2)
        row["blur"].append(rng.random() <= blur_p)
        row["solarize"].append(False)

    for _ in range(CLIPS):
        pre = resized_crop_box(rng, HEIGHT, WIDTH, (0.2, 1.0))
        box, flip = resized_crop_box(rng, 300, 300, (0.4, 1.0)), rng.random() < 0.5
        for _ in range(FRAMES):
            add("global", pre, box, flip, 0.1)
        for _ in range(6):
            for _ in range(FRAMES):
                add("local", pre, resized_crop_box(rng, 300, 300, (0.05, 0.4)), False, 0.5)
    return {
        kind: {k: np.asarray(v, dtype=float) for k, v in row.items()} for kind, row in out.items()
    }


def wtpipe_views(spec: MultiCropSpec, seed: int) -> dict[str, dict[str, np.ndarray]]:
    """The same measures from wtpipe's planned views of the same-sized real frames."""
    frames = [
        torch.zeros(3, HEIGHT, WIDTH, dtype=torch.uint8)
    ] * FRAMES  # the plan reads only the size
    views = ClipViews(spec, planned=True)
    torch.manual_seed(seed)
    plans = [views(frames) for _ in range(CLIPS)]
    out = {}
    for kind, rows in (
        ("global", [p.globals_[0] for p in plans]),
        ("local", [p.locals_[0].flatten(0, 1) for p in plans]),
    ):
        pre = (
            torch.stack([p.precrops[0] for p in plans])
            .repeat_interleave(len(rows[0]), dim=0)
            .numpy()
        )
        rows = torch.cat(rows).numpy()
        side = spec.precrop or None
        ph, pw = (pre[:, F["height"]], pre[:, F["width"]]) if side else (HEIGHT, WIDTH)
        frame_h = rows[:, F["height"]] * (ph / side if side else 1)
        frame_w = rows[:, F["width"]] * (pw / side if side else 1)
        out[kind] = {
            "area": frame_h * frame_w / (HEIGHT * WIDTH),
            "aspect": frame_w / frame_h,
            **{
                k: (rows[:, F[k]] > 0).astype(float)
                for k in ("flip", "jitter", "gray", "blur", "solarize")
            },
        }
    return out


def deviations(
    ours: dict[str, dict[str, np.ndarray]], theirs: dict[str, dict[str, np.ndarray]]
) -> list[str]:
    """Every measure whose distribution differs: ``kind measure: statistic``."""
    found = []
    for kind in ("global", "local"):
        a, b = ours[kind], theirs[kind]
        for measure in ("area", "aspect"):
            test = stats.ks_2samp(a[measure], b[measure])
            if test.pvalue < P:
                found.append(
                    f"{kind} {measure}: KS {test.statistic:.3f} (p {test.pvalue:.1e}); "
                    f"medians {np.median(a[measure]):.3f} vs {np.median(b[measure]):.3f}"
                )
        for op, rate in OFFICIAL[kind].items():
            k1, k2, n1, n2 = a[op].sum(), b[op].sum(), len(a[op]), len(b[op])
            if rate in (0.0, 1.0):
                if k1 != rate * n1:
                    found.append(f"{kind} {op}: rate {k1 / n1:.3f}, official {rate:g} exactly")
                continue
            pooled = (k1 + k2) / (n1 + n2)
            z = (k1 / n1 - k2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
            if 2 * stats.norm.sf(abs(z)) < P:
                found.append(f"{kind} {op}: rate {k1 / n1:.3f} vs {k2 / n2:.3f} (z {z:.1f})")
    return found


@pytest.fixture(scope="module")
def official() -> dict[str, dict[str, np.ndarray]]:
    return official_views(seed=0)


@pytest.fixture(scope="module")
def recipe() -> MultiCropSpec:
    return view_spec(load_config(TrainConfig, "configs/dora_vits16_wt.yaml").data)


def test_the_reference_draws_the_official_ranges(official):
    """Sanity of the re-derivation: pre-crop x global crop spans 8-100 % of the frame."""
    area = official["global"]["area"]
    assert 0.08 - 1e-3 <= area.min() < 0.1 and area.max() > 0.9
    assert official["local"]["area"].max() <= 0.4 + 1e-3


def test_the_recipe_views_follow_the_official_distribution(recipe, official):
    ours = wtpipe_views(recipe, seed=1)
    assert len(ours["global"]["area"]) == len(official["global"]["area"]) == CLIPS * FRAMES
    assert deviations(ours, official) == []


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            {"precrop": 0},
            ["global area", "local area"],
        ),  # crops of the whole frame: 40-100 % globals
        ({"local_flip": True}, ["local flip"]),
        ({"precrop_scale": (0.4, 1.0)}, ["global area", "local area"]),
    ],
)
def test_a_one_line_deviation_is_caught(recipe, official, change, expected):
    found = deviations(
        wtpipe_views(MultiCropSpec(**{**recipe.__dict__, **change}), seed=1), official
    )
    assert set(expected) <= {f.split(":")[0] for f in found}, found
