"""The fine-tuning loop shared by segmentation and detection, built from the pretraining's pieces.

Checkpoints (atomic, checksummed, damaged ones set aside), per-rank RNG states, the stop signals,
the thread budget, the step-seeded loader and the scalar log are the trainer's own modules; only
the step differs. A run killed at any moment and re-run resumes from its newest intact checkpoint,
bit-identical on CPU to an uninterrupted run. What a task supplies is a :class:`Task`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from accelerate.utils import set_seed
from safetensors.torch import save_file
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from wtpipe.atomic import replacing, write_json_atomic
from wtpipe.data.loader import make_loader, running, to_device
from wtpipe.engine import checkpoint, rundir
from wtpipe.engine.logs import ScalarLog, open_run, plot_loss
from wtpipe.engine.resources import start_process
from wtpipe.engine.stopping import StopRequest
from wtpipe.finetune.optim import layer_decay_groups
from wtpipe.models.vit import ViTBackbone
from wtpipe.models.weights import load_backbone
from wtpipe.ops.schedules import poly

log = logging.getLogger(__name__)


class Task(Protocol):
    """What differs between fine-tuning tasks."""

    primary: str  # the validation metric that picks the best checkpoint (higher is better)
    columns: list[str]  # scalars.csv columns after step, loss, lr

    def build(self, backbone: ViTBackbone) -> tuple[nn.Module, nn.Module]:
        """(the model, the modules that are not the ViT: trained at the full rate)."""

    def dataset(self) -> Dataset: ...

    def collate(self, items: list[Any]) -> Any: ...

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor: ...

    def validate(self, model: nn.Module, out: str, device: torch.device) -> dict[str, float]:
        """Score the validation split into ``out`` (metrics.json, pictures); the scalars to log."""


@dataclass
class Result:
    main: bool
    step: int
    end: int
    stopped: bool
    signal: str
    loss: float
    seconds: float
    metrics: dict[str, float]
    best: dict[str, Any]
    output_dir: str


def model_and_optimizer(
    config: Any, task: Task, backbone: ViTBackbone
) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The task's model around ``backbone`` and AdamW with layer-wise lr decay (the backbone frozen
    first when the recipe says so, so that its parameters join no group)."""
    if config.model.freeze_backbone:
        backbone.requires_grad_(False)
    model, head = task.build(backbone)
    o = config.optim
    return model, torch.optim.AdamW(
        layer_decay_groups(backbone, head, o.weight_decay, o.layer_decay),
        lr=o.lr,
        betas=(0.9, 0.999),
        fused=torch.cuda.is_available(),
    )


class Finetuner:
    def __init__(self, config: Any, task: Task) -> None:
        self.config, self.task = config, task
        run, model_cfg = config.run, config.model
        self.accelerator, self.threads = start_process(
            run.mixed_precision, run.threads, config.data.num_workers
        )
        self.rank = self.accelerator.process_index
        self.out = run.output_dir
        self.ckpt_root = os.path.join(self.out, rundir.CHECKPOINTS)
        pretrained, self.weights_info = load_backbone(model_cfg.weights)
        set_seed(run.seed)  # the same head on every rank
        backbone = ViTBackbone(
            self.weights_info.arch,
            drop_path_rate=model_cfg.drop_path_rate,
            pos_interpolation=self.weights_info.pos_interpolation,
        )
        backbone.load_state_dict(pretrained.state_dict())
        model, optimizer = model_and_optimizer(config, task, backbone)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.frozen = backbone if model_cfg.freeze_backbone else None
        self.start_step, self.best, self._rng = self._resume()

    # -- checkpoints ---------------------------------------------------------------------
    def _resume(self) -> tuple[int, dict[str, Any], dict[str, Any] | None]:
        found = checkpoint.resume(self.accelerator, self.ckpt_root, self.config)
        if found is None:
            return 0, {}, None
        _, state, rng = found
        self.accelerator.unwrap_model(self.model).load_state_dict(state["model"])
        self.optimizer.optimizer.load_state_dict(state["optimizer"])
        return int(state["step"]), dict(state["best"]), rng

    def _save(self, step: int) -> None:
        acc = self.accelerator
        checkpoint.save(
            acc,
            self.ckpt_root,
            step,
            self.config,
            self.optimizer.optimizer,
            lambda: {"model": acc.unwrap_model(self.model).state_dict(), "best": self.best},
        )

    def _write_model(self, folder: str, metrics: dict[str, float], step: int) -> None:
        """``folder/model.safetensors`` (the whole fine-tuned model) and its metrics, replaced atomically."""
        os.makedirs(folder, exist_ok=True)
        state = {
            k: v.detach().cpu().contiguous()
            for k, v in self.accelerator.unwrap_model(self.model).state_dict().items()
        }
        with replacing(os.path.join(folder, "model.safetensors")) as tmp:
            save_file(state, tmp, metadata={"step": str(step), "weights": self.weights_info.source})
        write_json_atomic(os.path.join(folder, "metrics.json"), _json({"step": step, **metrics}))

    # -- validation ----------------------------------------------------------------------
    def _validate(self, step: int, logs: ScalarLog | None) -> dict[str, float]:
        """Main process scores the validation split (the others wait); keeps the best model."""
        acc, metrics = self.accelerator, {}
        if acc.is_main_process:
            model = acc.unwrap_model(self.model)
            model.eval()
            with torch.random.fork_rng(devices=[]):  # validation must not move the training RNG
                metrics = self.task.validate(
                    model, os.path.join(self.out, "val", rundir.step_name(step)), acc.device
                )
            model.train()
            self._keep_frozen_eval()
            log.info("step %d: %s", step, ", ".join(f"{k} {v:.2f}" for k, v in metrics.items()))
            if not self.best or metrics[self.task.primary] > self.best["value"]:
                self.best = {
                    "step": step,
                    "metric": self.task.primary,
                    "value": metrics[self.task.primary],
                }
                self._write_model(os.path.join(self.out, "best"), metrics, step)
            if logs is not None:
                logs.write(step, {f"val_{k}": v for k, v in metrics.items()})
        acc.wait_for_everyone()
        return metrics

    def _finish(self, end: int, logs: ScalarLog | None) -> dict[str, float]:
        """The final validation and ``last/``, unless a previous run of this command wrote them
        (``last/metrics.json`` is written after everything else)."""
        done = os.path.join(self.out, "last", "metrics.json")
        if os.path.exists(done):
            with open(done) as handle:
                written = json.load(handle)
            if written.get("step") == end:
                return {k: written[k] for k in written if k != "step"}
        metrics = self._validate(end, logs)
        if self.accelerator.is_main_process:
            self._write_model(os.path.join(self.out, "last"), metrics, end)
        return metrics

    def _keep_frozen_eval(self) -> None:
        """A frozen backbone stays in eval mode (no drop-path, as the linear protocol has it)."""
        if self.frozen is not None:
            self.frozen.eval()

    # -- the loop ------------------------------------------------------------------------
    def _set_lr(self, step: int) -> float:
        o = self.config.optim
        lr = poly(step, o.iters, o.lr, o.min_lr, o.power, o.warmup_iters)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        return lr

    def _step(self, batches: Any) -> torch.Tensor:
        acc, o = self.accelerator, self.config.optim
        total = torch.zeros((), device=acc.device)
        for micro in range(o.grad_accum):
            batch = to_device(next(batches), acc.device)
            context = acc.no_sync(self.model) if micro < o.grad_accum - 1 else torch.enable_grad()
            with context, acc.autocast():
                loss = self.task.loss(self.model, batch)
                acc.backward(loss / o.grad_accum)
            total += loss.detach() / o.grad_accum
        if o.clip_grad > 0:
            acc.clip_grad_norm_(self.model.parameters(), o.clip_grad)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total

    def _train(self, logs: ScalarLog | None, stop: StopRequest) -> tuple[int, bool, float]:
        """Steps from ``start_step`` to the end or a stop request: (step reached, stopped, last mean loss)."""
        cfg, acc, end = self.config, self.accelerator, self.config.optim.iters
        step, stopped, mean_loss = self.start_step, False, float("nan")
        loader = make_loader(
            self.task.dataset(),
            cfg.data.batch_size,
            cfg.run.seed,
            self.rank,
            self.start_step * cfg.optim.grad_accum,
            cfg.data.num_workers,
            self.task.collate,
        )
        with running(loader) as batches:
            if self._rng is not None:
                checkpoint.set_rng_state(self._rng)
            else:
                torch.manual_seed(cfg.run.seed + 1 + self.rank)
            with tqdm(
                total=end,
                initial=step,
                desc="finetune",
                unit="step",
                disable=not acc.is_main_process,
            ) as bar:
                while step < end and not stopped:
                    lr = self._set_lr(step)
                    loss = self._step(batches)
                    step += 1
                    bar.update(1)
                    if step % cfg.run.log_every == 0 or step == end:
                        mean_loss = float(acc.reduce(loss, "mean").item())
                        bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}")
                        if logs is not None:
                            logs.write(step, {"loss": mean_loss, "lr": lr})
                    stopped = stop.agreed(acc.device)
                    if (
                        not stopped
                        and cfg.run.val_every
                        and step % cfg.run.val_every == 0
                        and step != end
                    ):
                        self._validate(step, logs)  # before the checkpoint, which keeps the best
                    if step % cfg.run.checkpoint_every == 0 or step == end or stopped:
                        self._save(step)
                        if logs is not None:
                            plot_loss(logs.csv_path, os.path.join(self.out, rundir.LOSS_CURVE))
        return step, stopped, mean_loss

    def run(self) -> Result:
        """Train to ``optim.iters`` (or a stop request), then the final validation and ``last/``."""
        cfg, acc = self.config, self.accelerator
        started, end = time.monotonic(), cfg.optim.iters
        columns = ["step", "loss", "lr", *(f"val_{c}" for c in self.task.columns)]
        logs = open_run(acc, self.out, cfg, self.start_step, end, columns, self.threads)
        stop = StopRequest()
        self.model.train()
        self._keep_frozen_eval()
        step, stopped, mean_loss, metrics = self.start_step, False, float("nan"), {}
        try:
            if step < end:
                step, stopped, mean_loss = self._train(logs, stop)
            if not stopped:
                metrics = self._finish(end, logs)
        finally:
            stop.restore()
            if logs is not None:
                logs.close()
                plot_loss(
                    logs.csv_path, os.path.join(self.out, rundir.LOSS_CURVE)
                )  # with the final validation
        return Result(
            acc.is_main_process,
            step,
            end,
            stopped,
            stop.signal_name,
            mean_loss,
            time.monotonic() - started,
            metrics,
            self.best,
            self.out,
        )


def _json(data: Any) -> str:
    return json.dumps(data, indent=1, default=str) + "\n"
