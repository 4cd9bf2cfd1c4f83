"""The pretraining loop shared by every method, under Hugging Face Accelerate.

Schedules are functions of the global step; the data stream is a function of (seed, rank, step);
a checkpoint holds everything else (weights, teacher, optimizer, scaler, loss state, every
rank's RNG states). So a run killed at any moment and started again with the same command
continues as if it had never stopped, bit for bit.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import torch
from accelerate.utils import set_seed
from tqdm import tqdm

from wtpipe.config import to_dict
from wtpipe.data.index import ShardIndex
from wtpipe.data.loader import ClipDataset, make_loader, running, to_device
from wtpipe.engine import checkpoint, rundir
from wtpipe.engine.logs import ScalarLog, open_run, plot_loss, pretraining_columns
from wtpipe.engine.resources import start_process
from wtpipe.engine.stopping import StopRequest
from wtpipe.methods import method_class
from wtpipe.models.weights import save_backbone
from wtpipe.ops.grads import clip_per_parameter, decay_groups
from wtpipe.ops.lars import LARS
from wtpipe.ops.monitors import REMEDIES, collapse
from wtpipe.ops.schedules import cosine
from wtpipe.train.config import TrainConfig
from wtpipe.train.export import weights_info

log = logging.getLogger(__name__)


def make_optimizer(name: str, groups: list[dict]) -> torch.optim.Optimizer:
    """``optim.optimizer``: AdamW (DINO, DoRA; fused into one kernel on CUDA, the for-each path
    elsewhere) or LARS (SwAV). Learning rate and weight decay are set by the schedules."""
    if name == "lars":
        return LARS(groups)
    return torch.optim.AdamW(groups, fused=torch.cuda.is_available())


class Trainer:
    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.index = ShardIndex.build(
            config.data.shards
        )  # before anything is created: bad shards fail fast
        self.accelerator, self.threads = start_process(
            config.run.mixed_precision,
            config.run.threads,
            config.data.num_workers,
            config.run.dist_timeout_minutes,
        )
        self.rank = self.accelerator.process_index
        self.out = config.run.output_dir
        self.ckpt_root = os.path.join(self.out, rundir.CHECKPOINTS)
        set_seed(config.run.seed)  # identical initial weights on every rank
        self.method = method_class(config.method.name)(config)
        if (
            config.run.compile
        ):  # in place: the state dict keeps its keys, so checkpoints do not change
            self.method.student.backbone.vit.compile()
        optimizer = make_optimizer(config.optim.optimizer, decay_groups(self.method.student))
        self.student, self.optimizer = self.accelerator.prepare(self.method.student, optimizer)
        self.method.to(self.accelerator.device)
        world = self.accelerator.num_processes
        self._clips_per_step = config.data.batch_size * world * config.optim.grad_accum
        self.steps_per_epoch = config.optim.steps_per_epoch or self._epoch_of_clip_starts()
        self.total_steps = config.optim.epochs * self.steps_per_epoch
        self.base_lr = (
            config.optim.lr * self._clips_per_step / 256.0
        )  # linear scaling with the global batch
        self.start_step, self._rng = self._resume()
        self._started = time.monotonic()
        self.collapsed: list[str] = []  # collapse kinds warned about ("uniform", "one-hot")
        self._suspect: str | None = None
        self._settled = (
            max(config.optim.warmup_epochs, self.method.settle_epochs) * self.steps_per_epoch
        )  # collapse watch
        self._waited = 0.0  # seconds this process has waited for the loader's batches

    def _epoch_of_clip_starts(self) -> int:
        """``optim.steps_per_epoch=0``: as many steps as one pass over every clip start takes."""
        d = self.config.data
        starts = self.index.clip_starts(d.clip_frames, d.frame_gap)
        steps = max(1, starts // self._clips_per_step)  # whole batches, as a loader with drop_last
        if self.accelerator.is_main_process:
            log.info(
                "an epoch is %d steps: %d clip starts (source frames) / %d clips a step",
                steps,
                starts,
                self._clips_per_step,
            )
        return steps

    # -- checkpoints ---------------------------------------------------------------------
    def _resume(self) -> tuple[int, dict[str, Any] | None]:
        """Load the newest intact checkpoint, if any: (its step, this rank's RNG states to restore)."""
        found = checkpoint.resume(self.accelerator, self.ckpt_root, self.config)
        if found is None:
            return 0, None
        _, state, rng = found
        self.accelerator.unwrap_model(self.student).load_state_dict(state["student"])
        self.optimizer.optimizer.load_state_dict(state["optimizer"])
        self.method.load_checkpoint_state(state, self.accelerator.device)
        return int(state["step"]), rng

    def _seed_training_rng(self) -> None:
        """Per-rank RNG for the steps (drop-path): restored on resume, seeded on a fresh start.

        Called after the data iterator is created, which itself draws from the global RNG.
        """
        if self._rng is not None:
            checkpoint.set_rng_state(self._rng)
        else:
            torch.manual_seed(self.config.run.seed + 1 + self.rank)

    def _save(self, step: int) -> None:
        """All ranks: write a checkpoint of the state after ``step`` steps."""
        acc = self.accelerator
        method_state = self.method.checkpoint_state()  # every rank: it may gather per-rank state
        checkpoint.save(
            acc,
            self.ckpt_root,
            step,
            self.config,
            self.optimizer.optimizer,
            lambda: {
                "student": acc.unwrap_model(self.student).state_dict(),
                **method_state,
            },
            alongside=lambda directory: self._write_backbone(
                os.path.join(directory, rundir.BACKBONE), step
            ),
        )

    def _write_backbone(self, path: str, step: int) -> None:
        """The method's backbone for evaluation (``wtpipe.models.weights``), without the trainer."""
        save_backbone(
            self.method.export_state(),
            path,
            weights_info(to_dict(self.config), step),
        )

    def _evaluate(self, step: int) -> dict[str, float]:
        """Main process: the scheduled frozen-feature tasks on the method's backbone (others wait)."""
        from wtpipe.eval.tasks import (
            during_training,  # only runs that evaluate pay for the import
        )

        scalars: dict[str, float] = {}
        if self.accelerator.is_main_process:
            e = self.config.eval
            scalars = during_training(
                self.method.backbone(),
                weights_info(to_dict(self.config), step),
                e.tasks,
                {t: getattr(e, f"{t}_data") for t in e.tasks},
                os.path.join(self.out, rundir.EVALUATIONS, rundir.step_name(step)),
            )
            log.info("step %d: %s", step, ", ".join(f"{k} {v:.2f}" for k, v in scalars.items()))
        self.accelerator.wait_for_everyone()
        return scalars

    # -- the loop ------------------------------------------------------------------------
    def _set_schedules(self, step: int) -> tuple[float, float]:
        o = self.config.optim
        warmup = o.warmup_epochs * self.steps_per_epoch
        lr = cosine(step, self.total_steps, self.base_lr, o.min_lr, warmup)
        wd = cosine(step, self.total_steps, o.weight_decay, o.weight_decay_end)
        for i, group in enumerate(self.optimizer.param_groups):
            group["lr"] = lr
            if i == 0:
                group["weight_decay"] = wd
        return lr, wd

    def _step(self, batches: Any, step: int) -> tuple[torch.Tensor, dict[str, Any]]:
        """One optimiser step: (its mean loss, the method's scalars of the last micro-batch)."""
        acc, o = self.accelerator, self.config.optim
        epoch = step // self.steps_per_epoch
        total = torch.zeros((), device=acc.device)
        for micro in range(o.grad_accum):
            asked = time.monotonic()
            batch = next(batches)
            self._waited += time.monotonic() - asked
            batch = to_device(batch, acc.device)
            sync = micro == o.grad_accum - 1
            context = acc.no_sync(self.student) if not sync else torch.enable_grad()
            with context, acc.autocast():
                loss, scalars = self.method.loss(self.student, batch, epoch)
                acc.backward(loss / o.grad_accum)
            total += loss.detach() / o.grad_accum
        student = acc.unwrap_model(self.student)
        if o.clip_grad > 0:
            if acc.scaler is not None:
                acc.unscale_gradients()
            clip_per_parameter(student, o.clip_grad)
        self.method.after_backward(student, epoch, step)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total, scalars

    def _mean_over_ranks(self, loss: torch.Tensor, scalars: dict[str, Any]) -> dict[str, float]:
        """The loss and the method's scalars averaged over ranks, in one all-reduce."""
        names = ["loss", *scalars]
        values = torch.stack(
            [
                torch.as_tensor(v, dtype=torch.float32, device=self.accelerator.device)
                for v in (loss, *scalars.values())
            ]
        )
        return dict(zip(names, self.accelerator.reduce(values, "mean").tolist()))

    def _watch_collapse(self, step: int, scalars: dict[str, float]) -> None:
        """Warn (once per kind) when two logging steps in a row, after the warm-ups, show collapse."""
        kind = collapse(scalars, self.config.model.out_dim) if step > self._settled else None
        if kind is not None and kind == self._suspect and kind not in self.collapsed:
            self.collapsed.append(kind)
            log.warning("step %d: the run has collapsed: %s", step, REMEDIES[kind])
        self._suspect = kind

    def run(self) -> dict[str, Any]:
        """Train to the end (or to ``run.max_steps``, or until asked to stop); a summary dict."""
        cfg, acc = self.config, self.accelerator
        end = (
            self.total_steps
            if cfg.run.max_steps is None
            else min(self.total_steps, cfg.run.max_steps)
        )
        columns = pretraining_columns(self.method.step_scalar_names, self.method.scalar_names)
        logs = open_run(acc, self.out, cfg, self.start_step, end, columns, self.threads)
        dataset = ClipDataset(
            self.index,
            cfg.data.clip_frames,
            cfg.data.frame_gap,
            self.method.views(planned=cfg.data.views_on_device()),
            encoded=cfg.data.decodes_on_device(),
        )
        stop = StopRequest()  # before the loader forks its workers (they ignore the stop signals)
        try:
            loader = make_loader(
                dataset,
                cfg.data.batch_size,
                cfg.run.seed,
                self.rank,
                self.start_step * cfg.optim.grad_accum,
                cfg.data.num_workers,
                self.method.collate,
            )
            with running(loader) as batches:
                step, stopped, loss = self._loop(batches, dataset, logs, stop, end)
        finally:
            stop.restore()
            if logs is not None:
                logs.close()
        if acc.is_main_process and not stopped:
            self._write_backbone(os.path.join(self.out, rundir.BACKBONE), step)
        acc.wait_for_everyone()
        seconds = time.monotonic() - self._started
        trained = step - self.start_step
        return {
            "main": acc.is_main_process,
            "step": step,
            "end": end,
            "start_step": self.start_step,
            "stopped": stopped,
            "signal": stop.signal_name,
            "loss": loss,
            "seconds": seconds,
            "clips_per_s": trained * self._clips_per_step / seconds if seconds > 0 else 0.0,
            "data_wait": self._waited / seconds if seconds > 0 else 0.0,
            "peak_gpu_gib": torch.cuda.max_memory_allocated(acc.device) / 2**30
            if acc.device.type == "cuda"
            else None,
            "output_dir": self.out,
            "checkpoint": rundir.latest(self.ckpt_root),
            "skipped_shards": self.index.skipped,
            "sample_failures": dataset.failures,
            "collapsed": self.collapsed,
        }

    def _loop(
        self,
        batches: Any,
        dataset: ClipDataset,
        logs: ScalarLog | None,
        stop: StopRequest,
        end: int,
    ) -> tuple[int, bool, float]:
        """The steps: (last step done, stopped by a signal, last logged mean loss)."""
        cfg, acc = self.config, self.accelerator
        self._seed_training_rng()
        step, last_step, last_time, last_waited = (
            self.start_step,
            self.start_step,
            time.monotonic(),
            self._waited,
        )
        stopped, mean_loss = False, float("nan")
        # the bar is closed on errors too, so an error message starts on a line of its own
        with tqdm(
            total=end,
            initial=self.start_step,
            desc="train",
            unit="step",
            disable=not acc.is_main_process,
        ) as bar:
            while step < end:
                lr, wd = self._set_schedules(step)
                loss, scalars = self._step(batches, step)
                stepped = self.method.after_step(
                    acc.unwrap_model(self.student), step, self.total_steps
                )
                step += 1
                bar.update(1)
                evaluated = (
                    self._evaluate(step) if cfg.eval.every and step % cfg.eval.every == 0 else None
                )
                if step % cfg.run.log_every == 0 or step == end or evaluated is not None:
                    now = time.monotonic()
                    # the loader stall: the fraction of the wall time since the last row spent waiting for batches
                    wait = (self._waited - last_waited) / max(now - last_time, 1e-9)
                    monitors = self._mean_over_ranks(loss, {**scalars, "data_wait": wait})
                    mean_loss = monitors.pop("loss")
                    self._watch_collapse(step, monitors)
                    rate = self._clips_per_step * (step - last_step) / max(now - last_time, 1e-9)
                    last_step, last_time, last_waited = step, now, self._waited
                    bar.set_postfix(
                        loss=f"{mean_loss:.4f}",
                        lr=f"{lr:.2e}",
                        clips_s=f"{rate:.1f}",
                        data_wait=f"{monitors['data_wait']:.0%}",
                        **{
                            k: f"{monitors[k]:.3g}"
                            for k in self.method.scalar_names
                            if k in monitors
                        },
                    )
                    if logs is not None:
                        logs.write(
                            step,
                            {
                                "epoch": step // self.steps_per_epoch,
                                "loss": mean_loss,
                                "lr": lr,
                                "wd": wd,
                                **stepped,
                                "clips_per_s": rate,
                                **monitors,
                                **(evaluated or {}),
                            },
                        )
                stopped = stop.agreed(acc.device)
                if acc.is_main_process and (
                    (cfg.run.viz_every and step % cfg.run.viz_every == 0) or step == end
                ):
                    self.method.write_pictures(
                        dataset, os.path.join(self.out, rundir.PICTURES), step
                    )
                if step % cfg.run.checkpoint_every == 0 or step == end or stopped:
                    self._save(step)
                    if logs is not None:
                        plot_loss(
                            logs.csv_path,
                            os.path.join(self.out, rundir.LOSS_CURVE),
                            cfg.model.out_dim,
                        )
                if stopped:
                    break
        return step, stopped, mean_loss
