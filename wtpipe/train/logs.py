"""What a person looks at during and after training: a CSV of scalars, TensorBoard events, and a
loss-curve PNG. All of it is written by rank 0; a resumed run continues the same files."""

from __future__ import annotations

import csv
import os

COLUMNS = ["step", "epoch", "loss", "lr", "wd", "momentum", "clips_per_s",
           "eval_knn_top1_k20", "eval_corloc_tokencut", "eval_corloc_lost"]


class ScalarLog:
    def __init__(self, output_dir: str, start_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.csv_path = os.path.join(output_dir, "scalars.csv")
        self._trim(start_step)
        self.writer = SummaryWriter(os.path.join(output_dir, "tensorboard"), purge_step=start_step + 1)

    def _trim(self, start_step: int) -> None:
        """Drop rows a killed run logged after its last checkpoint: they are about to be redone.
        The checkpoint's own step was logged before it was saved, so its row stays."""
        rows = []
        if os.path.exists(self.csv_path):
            with open(self.csv_path, newline="", encoding="utf-8") as handle:
                rows = [r for r in csv.DictReader(handle) if int(r["step"]) <= start_step]
        with open(self.csv_path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    def write(self, step: int, scalars: dict[str, float]) -> None:
        with open(self.csv_path, "a", newline="", encoding="utf-8") as handle:
            csv.DictWriter(handle, COLUMNS, extrasaction="ignore").writerow({"step": step, **scalars})
        for name, value in scalars.items():
            group, _, short = name.partition("_") if name.startswith("eval_") else ("train", "", name)
            self.writer.add_scalar(f"{group}/{short}", value, step)

    def close(self) -> None:
        self.writer.close()


def plot_loss(csv_path: str, png_path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return
    fig, (ax_loss, ax_lr) = plt.subplots(1, 2, figsize=(10, 3.5))
    steps = [int(r["step"]) for r in rows]
    ax_loss.plot(steps, [float(r["loss"]) for r in rows])
    ax_loss.set(xlabel="step", ylabel="loss", title="training loss")
    ax_lr.plot(steps, [float(r["lr"]) for r in rows])
    ax_lr.set(xlabel="step", ylabel="learning rate", title="schedule")
    fig.tight_layout()
    tmp = png_path + ".tmp.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, png_path)
