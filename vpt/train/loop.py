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
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.distributed.tensor import DTensor

from vpt import paths, preempt
from vpt.dist import World, any_rank, barrier, init_world, reshard, shard_learner
from vpt.errors import NonFiniteError, VptError
from vpt.progress import progress
from vpt.train import checkpoint as ckpt
from vpt.train.config import TrainConfig
from vpt.train.metrics import MetricsLog
from vpt.train.precision import MasterWeights, precision_of
from vpt.train.schedule import warmup_cosine
from vpt.train.state import LOOP_KEYS, TrainerState
from vpt.train.task import LearnerStep, Task
from vpt.train.timing import PhaseTimer
from vpt.value.meta import DesignerStep, DesignerStepConfig, downstream_gradient
from vpt.value.scope import scope_parameters

__all__ = ["LOOP_KEYS", "NonFiniteError", "Trainer"]

log = logging.getLogger("vpt.train")


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


def _refuse_under_fsdp(cfg: TrainConfig, precision_master: bool) -> None:
    """What one process supports and FSDP does not, each with the reason and what to use instead."""
    v = cfg.value
    if v.estimator in ("autograd", "jvp"):
        raise VptError(f"train.value.estimator {v.estimator!r} needs "
                       f"{'double backward' if v.estimator == 'autograd' else 'forward-mode AD'}, which FSDP2 does not "
                       "support; use finite_difference on several ranks (autograd and jvp are single-process references)")
    if v.kind == "cosine":
        raise VptError("train.value.kind 'cosine' takes grad_S L_pre by torch.autograd.grad, which skips FSDP's "
                       "reduce-scatter; use kind 'dot' on several ranks")
    if precision_master:
        raise VptError("train.weights bfloat16 keeps fp32 masters on one process; under FSDP use train.weights float32 "
                       "(each rank holds fp32 shards and computes in bf16 under autocast)")
    if cfg.lora.r > 0:
        raise VptError("train.lora: LoRA learners train on one process (set lora.r 0, or run with one rank)")


class Trainer(TrainerState):
    def __init__(self, cfg: TrainConfig, task: Task, run_dir: str | Path, device: str | torch.device | None = None) -> None:
        self.cfg, self.task = cfg, task
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.world: World = init_world(self.device.type)  # RANK / WORLD_SIZE from torchrun or a submitit task
        if self.world.distributed and self.device.type == "cuda":
            self.device = self.world.device  # cuda:LOCAL_RANK
        self.precision = precision_of(cfg.dtype, cfg.weights, self.device)
        self.param_dtype, self.autocast_dtype = self.precision.param_dtype, self.precision.autocast_dtype
        if self.world.distributed:
            _refuse_under_fsdp(cfg, self.precision.master_weights)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.run_dir = Path(run_dir)
        self.resume_from = self._resumable()
        torch.manual_seed(cfg.seed)
        task.build(self.device, self.param_dtype, self.world)
        # FSDP2 per block, fp32 shards (bf16 compute comes from autocast: the meta step needs fp32 weights)
        self.model = shard_learner(task.learner, self.world)
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
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl", self.run_dir / "tb" if cfg.tensorboard else None,
                                  write=self.world.is_main)
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
        if self.world.is_main:
            log.warning("%s: configuration changed (%s); starting fresh", self.run_dir, ", ".join(changed) or "paths")
            shutil.rmtree(paths.checkpoints_dir(self.run_dir), ignore_errors=True)
        barrier(self.world)
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
        return downstream_gradient(self.task.evaluators, self.model, scope, self.gen, self.cfg.value.feedback_scope_graph,
                                   by_backward=self.world.distributed)

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
        reshard(self.model)  # its forwards had no backward: drop gathered copies before the optimizer steps the shards
        return row

    def _backward(self, loss: torch.Tensor) -> None:
        """One micro-batch's backward (gradients accumulate in .grad), after the finite check (on
        every rank: one rank stopping alone would leave the others waiting in a collective)."""
        bad = not torch.isfinite(loss).item()
        if any_rank(bad) if self.world.distributed else bad:
            raise NonFiniteError(f"step {self.step + 1}: loss is {loss.item()} on rank {self.world.rank}; "
                                 "the last good checkpoint is kept")
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
        if isinstance(gnorm, DTensor):  # sharded gradients: the norm over every rank's shards
            gnorm = gnorm.full_tensor()
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
        bar = progress(total=self.cfg.steps, initial=self.step, desc=f"train {self.cfg.method}", unit="step",
                       disable=not self.world.is_main)
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
                stop = any_rank(preempt.requested()) if self.world.distributed else preempt.requested()
                if stop and self.step < end:  # SIGUSR2/SIGTERM (on any rank): every rank stops at this step boundary
                    raise preempt.Preempted(self.step, self._checkpoint_now())
        finally:
            bar.close()
            self.metrics.close()
        if self.step == self.cfg.steps:
            return self.save_final()
        return {"step": self.step, "finished": False}
