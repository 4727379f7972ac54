"""What the value trainer writes and reads back: checkpoints (exact resume, on any number of
ranks), snapshots and the final model. A mixin of vpt.train.loop.Trainer, kept apart so the
loop reads top to bottom.

A checkpoint (vpt.train.checkpoint for the layout) holds the learner and its optimizer state as a
sharded torch.distributed.checkpoint (every rank writes its shards; it loads on any number of
ranks, or on one process), and, written once by rank 0, everything that is replicated: the
designer and its optimizer, fp32 master weights (bf16 weights, one process), the RNG states, the
configuration, the metrics so far and the loop state. Snapshots and final/ are a full
save_pretrained of the learner (gathered to rank 0 under FSDP), so evaluation does not change.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vpt import paths
from vpt.dist import World, barrier, full_model_state_dict, load_sharded, save_atomic_distributed, save_sharded
from vpt.errors import VptError
from vpt.io import write_json
from vpt.train import checkpoint as ckpt
from vpt.train.config import TrainConfig
from vpt.train.metrics import MetricsLog
from vpt.train.precision import MasterWeights
from vpt.train.task import Task

LOOP_KEYS = ("step", "steps", "method")  # the loop's own entries of state.json; the task's sit beside them
SHARDED = "sharded"  # the checkpoint's DCP directory: learner weights (+ optimizer state)
TASK_TENSORS = "task.pt"  # the task's replicated tensor state (Task.tensor_state), written by rank 0


def complete_adamw_state(opt: torch.optim.Optimizer) -> None:
    """AdamW state for every parameter that has none yet (a parameter whose gradient was dropped so
    far: DINO's frozen prototypes, a backbone during the head warm-up). A fresh optimizer loading a
    checkpoint expects a state per parameter; a step-0 state with zero moments is exactly what
    AdamW would create at the parameter's first update, so adding it changes no later step."""
    for group in opt.param_groups:
        on_device = group.get("fused") or group.get("capturable")
        for p in group["params"]:
            if p.requires_grad and not opt.state[p]:
                state = {"step": torch.zeros((), dtype=torch.float32, device=p.device if on_device else "cpu"),
                         "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                         "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
                if group.get("amsgrad"):
                    state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                opt.state[p] = state


class TrainerState:
    """Checkpoint, snapshot and final-model I/O of a Trainer (which sets these attributes)."""

    cfg: TrainConfig
    task: Task
    world: World
    run_dir: Path
    device: torch.device
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    master: MasterWeights | None
    designer: torch.nn.Module | None
    d_opt: torch.optim.Optimizer
    gen: torch.Generator
    metrics: MetricsLog
    step: int

    def _config_dict(self) -> dict[str, Any]:
        """Everything that defines the run: the train config and the task's inputs (resume check)."""
        return {"train": self.cfg.to_dict(), **self.task.record()}

    def _rng_state(self) -> dict[str, Any]:
        return {"torch": torch.get_rng_state(), "gen": self.gen.get_state(), "numpy": np.random.get_state(), "python": random.getstate()}

    def _loop_state(self) -> dict[str, Any]:
        return {"step": self.step, "steps": self.cfg.steps, "method": self.cfg.method, **self.task.state_dict()}

    def _sharded_optimizer(self) -> torch.optim.Optimizer | None:
        """The optimizer saved with the learner's shards; None when it steps master copies instead
        (bf16 weights: its state goes to optim.pt, keyed by position)."""
        return self.opt if self.master is None else None

    def save_checkpoint(self) -> Path:
        target = ckpt.step_dir(self.run_dir, self.step)

        complete_adamw_state(self.opt)

        def write(tmp: Path) -> None:
            save_sharded(tmp / SHARDED, self.model, self._sharded_optimizer())  # every rank, its shards
            if not self.world.is_main:
                return
            if self.designer is not None:
                torch.save(self.designer.state_dict(), tmp / "designer.pt")
            opt = {"designer": self.d_opt.state_dict() if self.designer is not None else None,
                   "learner": None if self.master is None else self.opt.state_dict(),
                   "master": None if self.master is None else self.master.state_dict()}
            torch.save(opt, tmp / "optim.pt")
            torch.save(self._rng_state(), tmp / "rng.pt")
            task_tensors = self.task.tensor_state()
            if task_tensors:  # e.g. vision's feedback heads and their optimizers
                torch.save(task_tensors, tmp / TASK_TENSORS)
            (tmp / "config.json").write_text(json.dumps(self._config_dict(), indent=2) + "\n")
            (tmp / "metrics.json").write_text(json.dumps(self.metrics.state_dict()) + "\n")
            (tmp / "state.json").write_text(json.dumps(self._loop_state(), indent=2) + "\n")

        save_atomic_distributed(target, write, self.world)
        if self.world.is_main:
            ckpt.mark_latest(self.run_dir, target, self.cfg.keep_checkpoints)
        barrier(self.world)
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
        load_sharded(path / SHARDED, self.model, self._sharded_optimizer())
        opt = torch.load(path / "optim.pt", map_location=self.device, weights_only=False)
        if self.master is not None:
            self.opt.load_state_dict(opt["learner"])
            self.master.load_state_dict(opt["master"])
        if self.designer is not None:
            self.designer.load_state_dict(torch.load(path / "designer.pt", map_location=self.device))
            self.d_opt.load_state_dict(opt["designer"])
        if (path / TASK_TENSORS).exists():
            self.task.load_tensor_state(torch.load(path / TASK_TENSORS, map_location=self.device, weights_only=False))
        rng = torch.load(path / "rng.pt", weights_only=False)
        torch.set_rng_state(rng["torch"])
        self.gen.set_state(rng["gen"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        self.metrics.load_state_dict(json.loads((path / "metrics.json").read_text()))

    def _save_model_once(self, target: Path, extra: dict[str, str]) -> None:
        """A loadable model at `target` (text files `extra` beside it), written by rank 0 from the
        full learner weights (gathered from every rank under FSDP)."""
        full = full_model_state_dict(self.model) if self.world.distributed else None

        def write(tmp: Path) -> None:
            self.task.save_model(tmp, full)
            for name, value in extra.items():
                (tmp / name).write_text(value)
            if self.designer is not None and "run_config.json" in extra:
                torch.save(self.designer.state_dict(), tmp / "designer.pt")

        if self.world.is_main:
            ckpt.save_atomic(target, write)
        barrier(self.world)

    def save_snapshot(self) -> Path:
        """The model as of now, in the same loadable format as final/, for checkpoint evaluations
        (Figure 2 left, Table 4's early stopping). Weights and tokenizer only: no optimizer state."""
        target = ckpt.snapshot_dir(self.run_dir, self.step)
        self._save_model_once(target, {"state.json": json.dumps({"step": self.step, "method": self.cfg.method}) + "\n"})
        return target

    def save_final(self) -> dict[str, Any]:
        rows = self.metrics.rows
        summary = {
            **self._loop_state(), "finished": True,
            "final_loss": rows[-1]["loss"] if rows else None,
            "mean_loss_last_10": float(np.mean([r["loss"] for r in rows[-10:]])) if rows else None,
        }
        self._save_model_once(paths.final_dir(self.run_dir), {"run_config.json": json.dumps(self._config_dict(), indent=2) + "\n",
                                                              "state.json": json.dumps(summary, indent=2) + "\n"})
        if self.world.is_main:
            write_json(self.run_dir / "summary.json", summary)
        return summary
