"""The value trainer: one loop for every method and modality (compute-matched: same data, batch
shape, optimizer, schedule, clipping and number of learner steps), with the value meta-update for
the methods that have a designer. What a sample is belongs to the task (vpt.train.task); this
loop never sees a token.

Per learner step:
    batch -> task.learner_step (the designer's task as it is, detached), per micro-batch:
    forward -> finite check -> backward (gradients accumulate) -> [meta step] -> clip -> AdamW step
Per meta step (every value.meta_every steps after value.burn_in, for methods with a designer),
at the same theta and on the same batch:
    g_down = sum of the task's weighted evaluator gradients over the alignment scope (labels only here)
    one designer AdamW step on -V (+ the task's regulariser), by vpt.value.meta.DesignerStep
The designer update takes effect from the next step on, so the learner's update at a step never
depends on that step's feedback batch: changing feedback labels changes only the designer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vpt import paths, preempt
from vpt.errors import NonFiniteError, VptError
from vpt.io import write_json
from vpt.progress import progress
from vpt.train import checkpoint as ckpt
from vpt.train.config import TrainConfig
from vpt.train.metrics import MetricsLog
from vpt.train.precision import MasterWeights, precision_of
from vpt.train.schedule import warmup_cosine
from vpt.train.task import LearnerStep, Task
from vpt.train.timing import PhaseTimer
from vpt.value.meta import DesignerStep, DesignerStepConfig, downstream_gradient
from vpt.value.scope import scope_parameters

__all__ = ["NonFiniteError", "Trainer"]

log = logging.getLogger("vpt.train")

LOOP_KEYS = ("step", "steps", "method")  # the loop's own entries of state.json; the task's sit beside them


@contextlib.contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """Value estimates compare nearby losses: no TF32 inside the meta step."""
    if device.type != "cuda":
        yield
        return
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = prev


class Trainer:
    def __init__(self, cfg: TrainConfig, task: Task, run_dir: str | Path, device: str | torch.device | None = None) -> None:
        self.cfg, self.task = cfg, task
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.precision = precision_of(cfg.dtype, cfg.weights, self.device)
        self.param_dtype, self.autocast_dtype = self.precision.param_dtype, self.precision.autocast_dtype
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.run_dir = Path(run_dir)
        self.resume_from = self._resumable()
        torch.manual_seed(cfg.seed)
        task.build(self.device, self.param_dtype, self.resume_from)
        self.model = task.learner
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.master = MasterWeights(self.params) if self.precision.master_weights else None
        self.opt_params = self.params if self.master is None else self.master.params  # what AdamW steps and clips
        self.opt = torch.optim.AdamW(
            self.opt_params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay,
            fused=True,  # one kernel for all parameters, on CPU as on GPU (transformers.Trainer's default too)
        )
        self.lrs = warmup_cosine(cfg.steps, cfg.lr, cfg.warmup_steps, cfg.min_lr_ratio)
        self.gen = torch.Generator().manual_seed(cfg.seed + 1)  # feedback batches, random directions
        self.designer = task.designer
        if self.designer is not None:
            self._init_value()
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl", self.run_dir / "tb" if cfg.tensorboard else None)
        self.timer: PhaseTimer | None = None  # set by benchmarks: time per phase of the step
        self.step = 0
        if self.resume_from is not None:
            self._load(self.resume_from)

    # ------------------------------------------------------------------ setup
    def _resumable(self) -> Path | None:
        """The latest checkpoint if it was written with this exact configuration. A checkpoint of
        a different configuration (edited hyper-parameters, a Snakemake rerun after a config
        change) is discarded so the run starts fresh instead of silently mixing the two."""
        path = ckpt.latest(self.run_dir)
        if path is None:
            return None
        saved = json.loads((path / "config.json").read_text())
        now = json.loads(json.dumps(self._config_dict()))
        if saved == now:
            return path
        changed = sorted(k for k in set(saved["train"]) | set(now["train"]) if saved["train"].get(k) != now["train"].get(k))
        changed += [f"inputs.{k}" for k in now.get("inputs", {}) if saved.get("inputs", {}).get(k) != now["inputs"][k]]
        log.warning("%s: configuration changed (%s); starting fresh", self.run_dir, ", ".join(changed) or "paths")
        shutil.rmtree(paths.checkpoints_dir(self.run_dir), ignore_errors=True)
        return None

    def _init_value(self) -> None:
        cfg, d, v = self.cfg, self.cfg.designer, self.cfg.value
        assert self.designer is not None
        self.d_params = list(self.designer.parameters())
        self.d_opt = torch.optim.AdamW(self.d_params, lr=d.lr, weight_decay=d.weight_decay)
        self.scope = scope_parameters(self.model, v.scope)
        self.designer_step = DesignerStep(self.d_params, self.d_opt, DesignerStepConfig(
            estimator=v.estimator, kind=v.kind, fd_eps=v.fd_eps, fd_fused=v.fd_fused,
            random_direction=cfg.method == "random_feedback", grad_clip=d.grad_clip))

    def _phase(self, name: str) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext() if self.timer is None else self.timer.phase(name)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    # ------------------------------------------------------------------ steps
    def is_meta_step(self, step: int) -> bool:
        v = self.cfg.value
        return self.designer is not None and step >= v.burn_in and (step - v.burn_in) % v.meta_every == 0

    def downstream_gradient(self) -> tuple[list[torch.Tensor], dict[str, float]]:
        """g_down over the scope (evaluator heads updated first), as the meta step computes it."""
        scope = [p for _, p in self.scope]
        return downstream_gradient(self.task.evaluators, self.model, scope, self.gen, self.cfg.value.feedback_scope_graph)

    def meta_step(self, learner_step: LearnerStep) -> dict[str, float]:
        scope = [p for _, p in self.scope]
        upcast = self.master.full_precision(self.model) if self.master is not None else contextlib.nullcontext()
        with full_precision(self.device), upcast:
            with self._phase("value_update/feedback_grad"):
                g_down, row = self.downstream_gradient()
            objective = self.task.value_objective(learner_step, self.scope)
            with self._phase("value_update/estimate"):
                row.update(self.designer_step(objective, scope, g_down, self.gen, self.task.designer_regulariser,
                                              step=self.step + 1))
        self.task.end_meta_step()
        return row

    def _backward(self, loss: torch.Tensor) -> None:
        """One micro-batch's backward (gradients accumulate in .grad), after the finite check."""
        if not torch.isfinite(loss):
            raise NonFiniteError(f"step {self.step + 1}: loss is {loss.item()}; the last good checkpoint is kept")
        loss.backward()

    def train_step(self) -> dict[str, Any]:
        cfg = self.cfg
        t0 = time.perf_counter()
        lr = float(self.lrs[self.step])
        for group in self.opt.param_groups:
            group["lr"] = lr
        batch = self.task.next_batch()
        row: dict[str, Any] = {"step": self.step + 1, "lr": lr}
        meta = self.is_meta_step(self.step)
        out = self.task.learner_step(batch, meta, self._autocast, self._phase, self._backward)
        if self.master is not None:
            self.master.pull_grads()  # before the meta step upcasts the learner
        if meta:
            t_meta = time.perf_counter()
            with self._phase("value_update"):
                row.update(self.meta_step(out))
            row["meta_seconds"] = time.perf_counter() - t_meta
        gnorm = torch.nn.utils.clip_grad_norm_(self.opt_params, cfg.grad_clip)
        if not torch.isfinite(gnorm):
            raise NonFiniteError(f"step {self.step + 1}: gradient norm is {gnorm.item()}; the last good checkpoint is kept")
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        if self.master is not None:
            self.master.push()
        self.task.after_update(self.step + 1)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        metrics = {k: v.item() for k, v in out.metrics.items()}
        row.update(loss=out.loss.item(), ce=metrics.pop("ce"), grad_norm=gnorm.item(), seconds=dt,
                   **{f"{self.task.throughput_unit}_per_s": self.task.units_per_batch / dt}, **metrics)
        self.step += 1
        return row

    # ------------------------------------------------------------------ run
    def run(self, stop_at: int | None = None) -> dict[str, Any]:
        """Train to cfg.steps (or stop after `stop_at` steps, checkpointed, to simulate a preemption)."""
        end = self.cfg.steps if stop_at is None else min(stop_at, self.cfg.steps)
        bar = progress(total=self.cfg.steps, initial=self.step, desc=f"train {self.cfg.method}", unit="step")
        try:
            while self.step < end:
                row = self.train_step()
                self.metrics.log(row)
                bar.update(1)
                bar.set_postfix(refresh=False, loss=f"{row['loss']:.4f}", **({"V": f"{row['value']:.2e}"} if "value" in row else {}))
                if self.step % self.cfg.log_every == 0:
                    self.metrics.flush()
                if self.step in self.cfg.snapshot_steps:
                    self.save_snapshot()
                if self.step % self.cfg.checkpoint_every == 0 or self.step == end:
                    self.save_checkpoint()
                if preempt.requested() and self.step < end:  # SIGUSR2/SIGTERM: stop at this step boundary
                    raise preempt.Preempted(self.step, self._checkpoint_now())
        finally:
            bar.close()
            self.metrics.close()
        if self.step == self.cfg.steps:
            return self.save_final()
        return {"step": self.step, "finished": False}

    # ------------------------------------------------------------------ state
    def _config_dict(self) -> dict[str, Any]:
        """Everything that defines the run: the train config and the task's inputs (resume check)."""
        return {"train": self.cfg.to_dict(), **self.task.record()}

    def _rng_state(self) -> dict[str, Any]:
        return {"torch": torch.get_rng_state(), "gen": self.gen.get_state(), "numpy": np.random.get_state(), "python": random.getstate()}

    def _loop_state(self) -> dict[str, Any]:
        return {"step": self.step, "steps": self.cfg.steps, "method": self.cfg.method, **self.task.state_dict()}

    def save_checkpoint(self) -> Path:
        target = ckpt.step_dir(self.run_dir, self.step)

        def write(tmp: Path) -> None:
            self.task.save_learner(tmp / "learner")
            if self.designer is not None:
                torch.save(self.designer.state_dict(), tmp / "designer.pt")
            opt = {"learner": self.opt.state_dict(), "designer": self.d_opt.state_dict() if self.designer is not None else None,
                   "master": None if self.master is None else self.master.state_dict()}
            torch.save(opt, tmp / "optim.pt")
            torch.save(self._rng_state(), tmp / "rng.pt")
            (tmp / "config.json").write_text(json.dumps(self._config_dict(), indent=2) + "\n")
            (tmp / "metrics.json").write_text(json.dumps(self.metrics.state_dict()) + "\n")
            (tmp / "state.json").write_text(json.dumps(self._loop_state(), indent=2) + "\n")

        ckpt.save_atomic(target, write)
        ckpt.mark_latest(self.run_dir, target, self.cfg.keep_checkpoints)
        return target

    def _checkpoint_now(self) -> Path:
        """A checkpoint of the current step, written unless the regular schedule just wrote it
        (a second save of a 7B model could outlast the scheduler's grace period)."""
        path = ckpt.step_dir(self.run_dir, self.step)
        return path if ckpt.latest(self.run_dir) == path else self.save_checkpoint()

    def _load(self, path: Path) -> None:
        state = json.loads((path / "state.json").read_text())
        if state["steps"] != self.cfg.steps or state["method"] != self.cfg.method:
            raise VptError(f"{path} was written by a run with method={state['method']} steps={state['steps']}; "
                           f"this run has method={self.cfg.method} steps={self.cfg.steps}. Use a new run directory.")
        self.step = state["step"]
        self.task.load_state_dict({k: v for k, v in state.items() if k not in LOOP_KEYS})
        opt = torch.load(path / "optim.pt", map_location=self.device, weights_only=False)
        self.opt.load_state_dict(opt["learner"])
        if self.master is not None:
            self.master.load_state_dict(opt["master"])
        if self.designer is not None:
            self.designer.load_state_dict(torch.load(path / "designer.pt", map_location=self.device))
            self.d_opt.load_state_dict(opt["designer"])
        rng = torch.load(path / "rng.pt", weights_only=False)
        torch.set_rng_state(rng["torch"])
        self.gen.set_state(rng["gen"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        self.metrics.load_state_dict(json.loads((path / "metrics.json").read_text()))

    def save_snapshot(self) -> Path:
        """The model as of now, in the same loadable format as final/, for checkpoint evaluations
        (Figure 2 left, Table 4's early stopping). Weights and tokenizer only: no optimizer state."""
        target = ckpt.snapshot_dir(self.run_dir, self.step)

        def write(tmp: Path) -> None:
            self.task.save_model(tmp)
            (tmp / "state.json").write_text(json.dumps({"step": self.step, "method": self.cfg.method}) + "\n")

        ckpt.save_atomic(target, write)
        return target

    def save_final(self) -> dict[str, Any]:
        rows = self.metrics.rows
        summary = {
            **self._loop_state(), "finished": True,
            "final_loss": rows[-1]["loss"] if rows else None,
            "mean_loss_last_10": float(np.mean([r["loss"] for r in rows[-10:]])) if rows else None,
        }

        def write(tmp: Path) -> None:
            self.task.save_model(tmp)
            if self.designer is not None:
                torch.save(self.designer.state_dict(), tmp / "designer.pt")
            (tmp / "run_config.json").write_text(json.dumps(self._config_dict(), indent=2) + "\n")
            (tmp / "state.json").write_text(json.dumps(summary, indent=2) + "\n")

        ckpt.save_atomic(paths.final_dir(self.run_dir), write)
        write_json(self.run_dir / "summary.json", summary)
        return summary

