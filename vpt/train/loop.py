"""One training loop for every method (compute-matched: same data, batch shape, optimizer,
schedule, clipping and number of learner steps), with the value meta-update for the methods
that have a designer.

Per learner step:
    batch -> learner forward -> top-K candidates -> soft target from the designer as it is
    (detached) -> loss -> finite check -> backward -> [meta step] -> clip -> AdamW step
Per meta step (every value.meta_every steps after value.burn_in, for vpt / random_feedback),
at the same theta and on the same batch and candidates:
    g_down = grad of the feedback loss over the alignment scope (labels are used only here)
    direction = g_down (vpt) or a fresh random vector of the same norm (random_feedback)
    one designer AdamW step on -V, V = direction^T g_pre, by the configured estimator
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from vpt.progress import progress

from vpt import preempt
from vpt.errors import VptError
from vpt.io import fingerprint, write_json
from vpt.models.designer import DesignerConfig, TaskDesigner
from vpt.models.learner import add_lora, build_from_architecture, load_learner
from vpt.train import checkpoint as ckpt
from vpt.train.config import VALUE_METHODS, TrainConfig
from vpt.train.data import FeedbackSet, PackedBatches
from vpt.train.metrics import MetricsLog
from vpt.train.objective import LanguageValueObjective, Shifted, learner_loss, logits_of, ntp_loss, step_targets
from vpt.train.schedule import warmup_cosine
from vpt.train.timing import PhaseTimer
from vpt.value.boundary import ScopeBoundary
from vpt.value.estimators import cosine_meta_gradient, meta_gradient
from vpt.value.flat import norm, random_like
from vpt.value.scope import graph_only_for, scope_parameters


log = logging.getLogger("vpt.train")


class NonFiniteError(VptError):
    pass


@dataclass
class RunSpec:
    """Where a run reads and writes, beyond the training hyper-parameters."""

    run_dir: Path
    packed_dir: Path
    tokenizer_path: str
    tokenizer_revision: str | None = None
    learner_path: str | None = None  # a hub id or local directory ...
    learner_revision: str | None = None
    architecture: dict[str, Any] | None = None  # ... or an architecture to initialize from scratch
    feedback_table: pd.DataFrame | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # recorded in config.json


def _dtypes(cfg: TrainConfig, device: torch.device) -> tuple[torch.dtype, torch.dtype | None]:
    """(parameter dtype, autocast dtype or None)."""
    if cfg.dtype == "auto":
        return torch.float32, (torch.bfloat16 if device.type == "cuda" else None)
    if cfg.dtype == "bfloat16":
        return torch.float32, torch.bfloat16
    return {"float32": torch.float32, "float64": torch.float64}[cfg.dtype], None


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
    def __init__(self, cfg: TrainConfig, spec: RunSpec, device: str | torch.device | None = None) -> None:
        from vpt.data.tokenizer import load_tokenizer

        self.cfg, self.spec = cfg, spec
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.param_dtype, self.autocast_dtype = _dtypes(cfg, self.device)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.run_dir = Path(spec.run_dir)
        self.resume_from = self._resumable()
        torch.manual_seed(cfg.seed)
        self.tok = load_tokenizer(spec.tokenizer_path, spec.tokenizer_revision)
        self.data = PackedBatches(spec.packed_dir, cfg.batch_size, cfg.seed)
        self.model = self._learner().to(self.device)
        self.model.train()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(
            self.params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay,
            fused=True,  # one kernel for all parameters, on CPU as on GPU (transformers.Trainer's default too)
        )
        self.lrs = warmup_cosine(cfg.steps, cfg.lr, cfg.warmup_steps, cfg.min_lr_ratio)
        self.gen = torch.Generator().manual_seed(cfg.seed + 1)  # feedback batches, random directions
        self.designer: TaskDesigner | None = None
        if cfg.method in VALUE_METHODS:
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
        if saved == json.loads(json.dumps(self._config_dict())):
            return path
        now = json.loads(json.dumps(self._config_dict()))
        changed = sorted(k for k in set(saved["train"]) | set(now["train"]) if saved["train"].get(k) != now["train"].get(k))
        changed += [f"inputs.{k}" for k in now["inputs"] if saved.get("inputs", {}).get(k) != now["inputs"][k]]
        log.warning("%s: configuration changed (%s); starting fresh", self.run_dir, ", ".join(changed) or "paths")
        shutil.rmtree(self.run_dir / "checkpoints", ignore_errors=True)
        return None

    def _learner(self) -> torch.nn.Module:
        cfg, spec = self.cfg, self.spec
        if self.resume_from is not None and cfg.lora.r == 0:
            model = load_learner(str(self.resume_from / "learner"), None, self.param_dtype, cfg.attn_implementation)
        elif spec.architecture is not None:
            pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id
            model = build_from_architecture(spec.architecture, len(self.tok), self.tok.eos_token_id, pad, cfg.attn_implementation)
            model = model.to(self.param_dtype)
        else:
            if spec.learner_path is None:
                raise VptError("no learner: set a learner path or an architecture")
            model = load_learner(spec.learner_path, spec.learner_revision, self.param_dtype, cfg.attn_implementation)
        if cfg.lora.r > 0:
            model = add_lora(model, cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout, cfg.lora.target_modules)
            if self.resume_from is not None:
                from peft import set_peft_model_state_dict
                from safetensors.torch import load_file

                set_peft_model_state_dict(model, load_file(str(self.resume_from / "learner" / "adapter_model.safetensors")))
        return model

    def _init_value(self) -> None:
        cfg = self.cfg
        if self.spec.feedback_table is None:
            raise VptError(f"method {cfg.method!r} needs a feedback set (train.feedback)")
        fb = cfg.feedback
        self.feedback = FeedbackSet(self.spec.feedback_table, self.tok, fb.n, fb.seed, fb.max_len)
        d = cfg.designer
        dcfg = DesignerConfig.for_learner(self.model, d)
        designer_dtype = torch.float64 if self.param_dtype == torch.float64 else torch.float32  # kept in fp32
        self.designer = TaskDesigner(dcfg).to(self.device, designer_dtype)
        self.d_params = list(self.designer.parameters())
        self.d_opt = torch.optim.AdamW(self.d_params, lr=d.lr, weight_decay=d.weight_decay)
        self.scope = scope_parameters(self.model, cfg.value.scope)
        use = cfg.value.scope_cache and cfg.value.scope.startswith("last:")
        self.boundary = ScopeBoundary(self.model, cfg.value.scope) if use else None

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

    def meta_step(self, ids: torch.Tensor, labels: torch.Tensor, cand: torch.Tensor) -> dict[str, float]:
        assert self.designer is not None
        cfg, v = self.cfg, self.cfg.value
        scope = [p for _, p in self.scope]
        with full_precision(self.device):
            fb_ids, fb_labels = (t.to(self.device) for t in self.feedback.sample(cfg.feedback.batch_size, self.gen))
            only = graph_only_for(self.model, scope) if v.feedback_scope_graph else contextlib.nullcontext()
            with self._phase("value_update/feedback_grad"), only:
                g_down = [g.detach() for g in torch.autograd.grad(ntp_loss(self.model, fb_ids, fb_labels), scope)]
            g_norm = norm(g_down)
            if g_norm.item() == 0.0:
                raise VptError(f"step {self.step + 1}: the feedback gradient is exactly zero (no labeled answer tokens "
                               f"in the feedback batch?); check train.feedback")
            direction = g_down if cfg.method == "vpt" else random_like(g_down, g_norm, self.gen)
            obj = LanguageValueObjective(self.model, self.scope, self.designer, ids, labels, cand, self.boundary)
            with self._phase("value_update/estimate"):
                if v.kind == "dot":
                    mg = meta_gradient(v.estimator, obj, scope, direction, self.d_params, v.fd_eps, v.fd_fused)
                else:
                    g_pre = torch.autograd.grad(obj.loss(learner_graph=True), scope)
                    mg = cosine_meta_gradient(v.estimator, obj, scope, direction, g_pre, self.d_params, v.fd_eps, v.fd_fused)
        if self.boundary is not None:
            self.boundary.clear()
        for p, g in zip(self.d_params, mg.grads):
            p.grad = -g  # ascend V
        d_norm = torch.nn.utils.clip_grad_norm_(self.d_params, cfg.designer.grad_clip)
        if not torch.isfinite(d_norm):
            raise NonFiniteError(f"step {self.step + 1}: non-finite designer gradient (V = {mg.value})")
        self.d_opt.step()
        self.d_opt.zero_grad(set_to_none=True)
        return {"value": mg.value, "g_down_norm": g_norm.item(), "designer_grad_norm": d_norm.item()}

    def train_step(self) -> dict[str, Any]:
        cfg = self.cfg
        t0 = time.perf_counter()
        lr = float(self.lrs[self.step])
        for group in self.opt.param_groups:
            group["lr"] = lr
        ids, labels = (t.to(self.device) for t in self.data.next())
        row: dict[str, Any] = {"step": self.step + 1, "lr": lr}
        meta = self.is_meta_step(self.step)
        keep = self.boundary.capture(ids) if meta and self.boundary is not None else contextlib.nullcontext()
        with self._autocast(), keep:
            logits = logits_of(self.model, ids)
        logits = logits.to(torch.float64 if self.param_dtype == torch.float64 else torch.float32)
        b = Shifted.of(ids, labels, logits.dtype)
        with self._phase("soft_targets"):
            targets = step_targets(cfg.method, logits, b, cfg.designer.K, cfg.alpha_fixed, self.designer)
        loss, ce = learner_loss(logits, b, targets)
        if not torch.isfinite(loss):
            raise NonFiniteError(f"step {self.step + 1}: loss is {loss.item()}; the last good checkpoint is kept")
        loss.backward()
        del logits
        if meta:
            t_meta = time.perf_counter()
            assert targets.cand is not None
            with self._phase("value_update"):
                row.update(self.meta_step(ids, labels, targets.cand))
            row["meta_seconds"] = time.perf_counter() - t_meta
        gnorm = torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
        if not torch.isfinite(gnorm):
            raise NonFiniteError(f"step {self.step + 1}: gradient norm is {gnorm.item()}; the last good checkpoint is kept")
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        row.update(loss=loss.item(), ce=ce.item(), grad_norm=gnorm.item(), seconds=dt, tokens_per_s=self.data.tokens_per_batch / dt)
        if targets.alpha is not None:
            a = targets.alpha[b.mask.bool()]
            row.update(alpha_mean=a.mean().item(), alpha_std=a.std().item() if a.numel() > 1 else 0.0)
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
        """Everything that defines the run. The input fingerprints make a rebuilt base model or
        repacked corpus at the same path count as a different run (no resuming across them)."""
        s = self.spec
        return {
            "train": self.cfg.to_dict(),
            "packed_dir": str(s.packed_dir), "tokenizer": [s.tokenizer_path, s.tokenizer_revision],
            "learner": [s.learner_path, s.learner_revision], "architecture": s.architecture, **s.extra,
            "inputs": {
                "packed": fingerprint(s.packed_dir),
                "tokenizer": fingerprint(s.tokenizer_path),
                "learner": fingerprint(s.learner_path) if s.learner_path else None,
                "feedback": None if s.feedback_table is None else
                pd.util.hash_pandas_object(s.feedback_table.astype(str), index=False).sum().item(),
            },
        }

    def _rng_state(self) -> dict[str, Any]:
        return {"torch": torch.get_rng_state(), "gen": self.gen.get_state(), "numpy": np.random.get_state(), "python": random.getstate()}

    def _loop_state(self) -> dict[str, Any]:
        return {"step": self.step, "steps": self.cfg.steps, "method": self.cfg.method, "data": self.data.state_dict()}

    def save_checkpoint(self) -> Path:
        target = ckpt.step_dir(self.run_dir, self.step)

        def write(tmp: Path) -> None:
            self.model.save_pretrained(tmp / "learner", safe_serialization=True)
            if self.designer is not None:
                torch.save(self.designer.state_dict(), tmp / "designer.pt")
            opt = {"learner": self.opt.state_dict(), "designer": self.d_opt.state_dict() if self.designer is not None else None}
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
        self.data.load_state_dict(state["data"])
        opt = torch.load(path / "optim.pt", map_location=self.device, weights_only=False)
        self.opt.load_state_dict(opt["learner"])
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
            self.model.save_pretrained(tmp, safe_serialization=True)
            self.tok.save_pretrained(tmp)
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
            self.model.save_pretrained(tmp, safe_serialization=True)
            self.tok.save_pretrained(tmp)
            if self.designer is not None:
                torch.save(self.designer.state_dict(), tmp / "designer.pt")
            (tmp / "run_config.json").write_text(json.dumps(self._config_dict(), indent=2) + "\n")
            (tmp / "state.json").write_text(json.dumps(summary, indent=2) + "\n")

        ckpt.save_atomic(self.run_dir / "final", write)
        write_json(self.run_dir / "summary.json", summary)
        return summary

