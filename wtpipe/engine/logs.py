"""What a person looks at during and after training: a CSV of scalars, TensorBoard events, and a
loss-curve PNG. All of it is written by rank 0; a resumed run continues the same files."""

from __future__ import annotations

import csv
import logging
import math
import os
from typing import Any

import yaml

from wtpipe.atomic import replacing, write_bytes_atomic
from wtpipe.config import to_dict
from wtpipe.engine import rundir

log = logging.getLogger(__name__)
EVALUATIONS = [
    "eval_knn_top1_k20",
    "eval_corloc_tokencut",
    "eval_corloc_lost",
    "eval_attention_jaccard",
]


def pretraining_columns(
    step_scalars: tuple[str, ...], method_scalars: tuple[str, ...]
) -> list[str]:
    """``scalars.csv``'s columns for a pretraining method: the loop's, the ones its step hooks
    return (e.g. the teacher's momentum), the ones its loss returns, the evaluations."""
    return [
        "step",
        "epoch",
        "loss",
        "lr",
        "wd",
        *step_scalars,
        "clips_per_s",
        "data_wait",
        *method_scalars,
        *EVALUATIONS,
    ]


def open_run(
    accelerator: Any,
    out: str,
    config: Any,
    start_step: int,
    end: int,
    columns: list[str],
    threads: int,
) -> ScalarLog | None:
    """At a loop's start, on the main process (the others get None): the run folder, its resolved
    ``config.yaml`` (written atomically), the start-up line in the log, and the scalar log
    continuing from ``start_step``."""
    if not accelerator.is_main_process:
        return None
    os.makedirs(out, exist_ok=True)
    write_bytes_atomic(
        os.path.join(out, rundir.CONFIG), yaml.safe_dump(to_dict(config), sort_keys=False).encode()
    )
    log.info(
        "%d intra-op threads, %d loader workers, %d process(es); steps %d -> %d",
        threads,
        config.data.num_workers,
        accelerator.num_processes,
        start_step,
        end,
    )
    return ScalarLog(out, start_step, columns)


class ScalarLog:
    def __init__(self, output_dir: str, start_step: int, columns: list[str]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.columns = columns
        self.csv_path = os.path.join(output_dir, rundir.SCALARS)
        self._trim(start_step)
        self.writer = SummaryWriter(
            os.path.join(output_dir, rundir.TENSORBOARD), purge_step=start_step + 1
        )

    def _trim(self, start_step: int) -> None:
        """Drop rows a killed run logged after its last checkpoint: they are about to be redone.
        The checkpoint's own step was logged before it was saved, so its row stays."""
        rows = []
        if os.path.exists(self.csv_path):
            with open(self.csv_path, newline="", encoding="utf-8") as handle:
                rows = [r for r in csv.DictReader(handle) if int(r["step"]) <= start_step]
        with open(self.csv_path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, self.columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    def write(self, step: int, scalars: dict[str, float]) -> None:
        """One row; a scalar without a column is a mistake of its method (``scalar_names``)."""
        unknown = sorted(set(scalars) - set(self.columns))
        if unknown:
            raise ValueError(
                f"scalars without a column in {self.csv_path}: {', '.join(unknown)} "
                "(declare them in the method's scalar_names)"
            )
        with open(self.csv_path, "a", newline="", encoding="utf-8") as handle:
            csv.DictWriter(handle, self.columns).writerow({"step": step, **scalars})
        for name, value in scalars.items():
            group, _, short = (
                name.partition("_") if name.startswith("eval_") else ("train", "", name)
            )
            self.writer.add_scalar(f"{group}/{short}", value, step)

    def close(self) -> None:
        self.writer.close()


# The monitor panels of loss.png: (title, (column, legend) lines, y range); a panel is drawn when
# the run logs one of its columns (DINO and DoRA: the teacher's; SwAV: the codes').
MONITOR_PANELS = (
    (
        "teacher output",
        (
            ("teacher_entropy", "entropy / ln K (1: uniform)"),
            ("dims_used", "dims used (1/K: one-hot)"),
        ),
        (0, 1.05),
    ),
    (
        "codes",
        (
            ("code_entropy", "entropy / ln K (1: uniform)"),
            ("prototypes_used", "prototypes picked / min(N, K)"),
            ("queue_used", "queue in the codes"),
        ),
        (0, 1.05),
    ),
    (
        "student features",
        (
            ("kl", "KL(teacher || student)"),
            ("feature_std", "feature std x sqrt(D)"),
            ("feature_rank", "feature rank / max"),
        ),
        None,
    ),
)


def plot_loss(csv_path: str, png_path: str, out_dim: int = 0) -> None:
    """Loss (against ln K, the loss of a uniform teacher), schedule, the collapse monitors of a
    pretraining run, and the validation scores of a fine-tuning run (the panels its columns have)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows, columns = list(reader), reader.fieldnames or []
    if not rows:
        return

    def series(name: str) -> tuple[list[int], list[float]]:
        points = [(int(r["step"]), float(r[name])) for r in rows if r.get(name) not in (None, "")]
        return [p[0] for p in points], [p[1] for p in points]

    panels = [panel for panel in MONITOR_PANELS if any(name in columns for name, _ in panel[1])]
    validation = [c for c in columns if c.startswith("val_")]
    count = 2 + len(panels) + bool(validation)
    fig, axes = plt.subplots(1, count, figsize=(4.5 * count, 3.6))
    loss_steps, loss = series("loss")
    axes[0].plot(loss_steps, loss, label="loss")
    steps, koleo = series("koleo")
    if koleo:  # the distillation part is what compares with ln K
        at = dict(zip(loss_steps, loss))
        axes[0].plot(steps, [at[s] - k for s, k in zip(steps, koleo)], label="loss - KoLeo term")
    if out_dim:
        axes[0].axhline(
            math.log(out_dim), color="grey", ls="--", lw=1, label="ln K (a uniform target)"
        )
    axes[0].set(xlabel="step", title="training loss")
    axes[0].legend(fontsize=8)
    axes[1].plot(*series("lr"))
    axes[1].set(xlabel="step", ylabel="learning rate", title="schedule")
    for axis, (title, lines, ylim) in zip(axes[2:], panels):
        for name, label in lines:
            if name in columns:
                axis.plot(*series(name), label=label)
        axis.set(xlabel="step", title=title, ylim=ylim)
        axis.legend(fontsize=8)
    if validation:
        for name in validation:
            axes[-1].plot(*series(name), marker="o", label=name[4:])
        axes[-1].set(xlabel="step", ylabel="%", title="validation")
        axes[-1].legend(fontsize=8)
    fig.tight_layout()
    with replacing(png_path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
