"""Our `ntp` training loop against `transformers.Trainer` on the same setting (issue target: our
tokens/s >= transformers.Trainer's).

Both arms train the same learner (same saved weights) on the same packed rows in the same order
(those our PackedBatches draws), with the same AdamW hyper-parameters, learning-rate schedule,
gradient clipping, dtype and torch threads. What differs is the loop around the model: ours is
vpt.train.loop.Trainer.train_step, theirs is Trainer.train() with its dataloader, callbacks and
accelerate. Each arm times the wall clock between the end of warm-up step W and the end of step
W+T, so everything a step costs (data, loss, clip, optimizer, scheduler, bookkeeping) is in the
window and one-time costs (first-call allocations, lazy init) are not.

The loss equivalence that makes this a fair comparison: our ntp loss is the mean CE of ids[:, 1:]
over positions where labels[:, 1:] != -100; the packed labels equal the ids wherever they are not
-100, and HF's causal-LM loss shifts labels by one and averages over the same positions.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vpt.bench.sidebyside import peak_rss_bytes, reset_peak_rss
from vpt.errors import VptError

ARMS = ("vpt_ntp", "hf_trainer")


def settings_from_config(cfg: dict[str, Any], warmup: int, window: int, threads: int, device: str) -> dict[str, Any]:
    """The default ntp run of a config (what `vpt train --method ntp` trains), as picklable settings
    with absolute paths (each arm runs in a spawned process)."""
    from vpt.runs import resolve_run, train_setup

    run = resolve_run(cfg, None, "ntp")
    tcfg, spec = train_setup(cfg, run, None)
    if run.model == "base" and not Path(str(spec.learner_path)).exists():
        raise VptError(f"learner {spec.learner_path} does not exist; pretrain it first (snakemake --cores 2 pretrain_base)")

    def local(p: str) -> str:  # a local directory becomes absolute; a hub id stays as it is
        return str(Path(p).resolve()) if Path(p).exists() else p

    return {
        "run": run.id, "train": tcfg.to_dict(), "packed_dir": str(Path(spec.packed_dir).resolve()),
        "tokenizer_path": local(spec.tokenizer_path), "tokenizer_revision": spec.tokenizer_revision,
        "learner_path": local(str(spec.learner_path)), "learner_revision": spec.learner_revision,
        "warmup": warmup, "window": window, "threads": threads, "device": device,
    }


@dataclass
class Window:
    """End-of-step clock marks; peak memory is reset at the window start (the end of step W) and
    read at its end, so both arms report the steady state of the same steps."""

    warmup: int
    window: int
    device: torch.device
    ends: list[float] = field(default_factory=list)
    peak: int = 0

    def step_end(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # the GPU's work belongs to the step that queued it
        n = len(self.ends) + 1
        if n == self.warmup:
            if self.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(self.device)
            else:
                reset_peak_rss()
        self.ends.append(time.perf_counter())
        if n == self.warmup + self.window:
            self.peak = torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda" else peak_rss_bytes()

    def metrics(self, tokens_per_step: int, losses: list[float]) -> dict[str, float]:
        seconds = self.ends[self.warmup + self.window - 1] - self.ends[self.warmup - 1]
        marks = self.ends[self.warmup - 1 : self.warmup + self.window]
        # The median step is robust to a few steps slowed by another tenant of a shared machine.
        median_step = statistics.median(b - a for a, b in zip(marks, marks[1:]))
        return {
            "tokens_per_s": self.window * tokens_per_step / seconds, "window_s": seconds, "step_s_mean": seconds / self.window,
            "step_s_median": median_step, "tokens_per_s_at_median_step": tokens_per_step / median_step,
            "peak_mem_bytes": float(self.peak), "first_loss": losses[0], "final_loss": losses[-1],
            **{f"loss_{i + 1}": v for i, v in enumerate(losses)},
        }


def _config(settings: dict[str, Any]) -> Any:
    from vpt.train.config import TrainConfig

    tcfg = TrainConfig.from_dict(settings["train"])
    if tcfg.method != "ntp" or tcfg.lora.r != 0:
        raise ValueError("the trainer benchmark compares full-parameter ntp only")
    tcfg.steps = settings["warmup"] + settings["window"]  # the schedule spans exactly the measured run, in both arms
    tcfg.tensorboard = False
    return tcfg


def _ours(settings: dict[str, Any], tmp: Path) -> dict[str, float]:
    from vpt.language.task import RunSpec, language_trainer

    tcfg = _config(settings)
    spec = RunSpec(run_dir=tmp / "run", packed_dir=Path(settings["packed_dir"]), tokenizer_path=settings["tokenizer_path"],
                   tokenizer_revision=settings["tokenizer_revision"], learner_path=settings["learner_path"],
                   learner_revision=settings["learner_revision"])
    trainer = language_trainer(tcfg, spec, device=settings["device"])
    win = Window(settings["warmup"], settings["window"], trainer.device)
    losses = []
    for _ in range(tcfg.steps):  # the loop of Trainer.run without its metrics file and checkpoints
        losses.append(trainer.train_step()["loss"])
        win.step_end()
    return win.metrics(trainer.task.units_per_batch, losses)


def _hf(settings: dict[str, Any], tmp: Path) -> dict[str, float]:
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from vpt.models.learner import load_learner
    from vpt.language.data import PackedBatches
    from vpt.train.precision import precision_of
    from vpt.train.schedule import warmup_cosine

    tcfg = _config(settings)
    device = torch.device(settings["device"])
    if tcfg.dtype not in ("auto", "float32", "bfloat16"):
        raise ValueError(f"dtype {tcfg.dtype!r} has no transformers.Trainer equivalent")
    if tcfg.weights != "float32":
        raise ValueError(f"weights {tcfg.weights!r}: the comparison runs transformers.Trainer's fp32 weights")
    bf16 = precision_of(tcfg.dtype, tcfg.weights, device).autocast_dtype == torch.bfloat16  # as our trainer

    # The exact rows our loop draws, in its order; a sequential sampler replays them batch by batch.
    data = PackedBatches(settings["packed_dir"], tcfg.batch_size, tcfg.seed)
    batches = [data.next() for _ in range(tcfg.steps)]
    rows = PackedRows(torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches]))
    lrs = warmup_cosine(tcfg.steps, tcfg.lr, tcfg.warmup_steps, tcfg.min_lr_ratio)
    win = Window(settings["warmup"], settings["window"], device)

    class Clock(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            win.step_end()

    class BenchTrainer(Trainer):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.losses: list[torch.Tensor] = []

        def get_decay_parameter_names(self, model: torch.nn.Module) -> list[str]:
            # HF exempts biases and norms from weight decay; our loop decays every parameter.
            return [n for n, _ in model.named_parameters()]

        def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
            # HF's cosine_with_min_lr is our warmup_cosine except during warm-up (lr s/W at step s,
            # ours (s+1)/W): replay our array so both arms take identical steps.
            if self.lr_scheduler is None:
                opt = optimizer or self.optimizer
                self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: float(lrs[min(s, len(lrs) - 1)]) / tcfg.lr)
            return self.lr_scheduler

        def training_step(self, *args: Any, **kwargs: Any) -> torch.Tensor:
            loss = super().training_step(*args, **kwargs)
            self.losses.append(loss)  # a detached tensor: no device sync inside the window
            return loss

    args = TrainingArguments(
        output_dir=str(tmp / "hf"), max_steps=tcfg.steps, per_device_train_batch_size=tcfg.batch_size,
        gradient_accumulation_steps=1, learning_rate=tcfg.lr, adam_beta1=tcfg.beta1, adam_beta2=tcfg.beta2,
        adam_epsilon=1e-8, weight_decay=tcfg.weight_decay, max_grad_norm=tcfg.grad_clip,
        lr_scheduler_type="cosine_with_min_lr", lr_scheduler_kwargs={"min_lr_rate": tcfg.min_lr_ratio},
        warmup_steps=tcfg.warmup_steps, train_sampling_strategy="sequential", dataloader_num_workers=0,
        logging_strategy="no", save_strategy="no", eval_strategy="no", report_to=[], disable_tqdm=True,
        seed=tcfg.seed, use_cpu=device.type == "cpu", bf16=bf16, tf32=True if device.type == "cuda" else None,
    )
    model = load_learner(settings["learner_path"], settings["learner_revision"], torch.float32, tcfg.attn_implementation)
    trainer = BenchTrainer(model=model, args=args, train_dataset=rows, callbacks=[Clock()])
    trainer.train()
    return win.metrics(tcfg.batch_size * rows.ids.shape[1], [float(x) for x in trainer.losses])


class PackedRows(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __init__(self, ids: torch.Tensor, labels: torch.Tensor) -> None:
        self.ids, self.labels = ids, labels

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def measure(arm: str, settings: dict[str, Any]) -> dict[str, float]:
    """One arm, W warm-up steps then a T-step timed window (run in a fresh process by alternate)."""
    torch.set_num_threads(settings["threads"])
    with tempfile.TemporaryDirectory(prefix=f"vpt-bench-{arm}-") as tmp:
        if arm == "vpt_ntp":
            return _ours(settings, Path(tmp))
        if arm == "hf_trainer":
            return _hf(settings, Path(tmp))
    raise ValueError(f"unknown arm {arm!r}; choose one of: {', '.join(ARMS)}")


def machine(device: str) -> dict[str, Any]:
    import transformers

    info: dict[str, Any] = {"cpu_count": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
                            "torch": torch.__version__, "transformers": transformers.__version__, "device": device}
    if torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def summarize(settings: dict[str, Any], rows: list[dict[str, Any]], repeats: int) -> dict[str, Any]:
    from vpt.bench.sidebyside import arm_summary, ratio_summary
    from vpt.data.pack import open_packed

    ours, hf = ARMS
    tcfg = settings["train"]

    def compare(metric: str) -> dict[str, Any]:
        return {ours: arm_summary(rows, ours, metric), hf: arm_summary(rows, hf, metric), "ratio": ratio_summary(rows, ours, hf, metric)}

    seq_len = int(open_packed(settings["packed_dir"])[0].shape[1])
    tokens = compare("tokens_per_s")
    tps = tokens["ratio"]
    loss_gap = [abs(a["final_loss"] - b["final_loss"]) / max(abs(b["final_loss"]), 1e-12)
                for a in rows if a["arm"] == ours for b in rows if b["arm"] == hf and b["repeat"] == a["repeat"]]
    cuda = torch.device(settings["device"]).type == "cuda"
    return {
        "benchmark": "trainer",
        "target": "our ntp tokens/s >= transformers.Trainer's on the same setting (median per-repeat ratio >= 1.0)",
        "target_met": tps["median"] is not None and tps["median"] >= 1.0,
        "note": "tokens_per_s (whole window) decides the target; tokens_per_s_at_median_step is the same ratio from each "
                "run's median step, less sensitive to other load on a shared machine",
        "settings": {
            **{k: settings[k] for k in ("run", "warmup", "window", "threads", "device")}, "repeats": repeats,
            "batch_size": tcfg["batch_size"], "seq_len": seq_len, "tokens_per_step": tcfg["batch_size"] * seq_len,
            "dtype": "bfloat16 autocast (HF bf16=True), TF32 on" if cuda else "float32",
            "optimizer": {"lr": tcfg["lr"], "betas": [tcfg["beta1"], tcfg["beta2"]], "eps": 1e-8, "weight_decay": tcfg["weight_decay"],
                          "weight_decay_on": "every parameter in both arms (HF's bias/norm exemption is switched off)",
                          "grad_clip": tcfg["grad_clip"],
                          "implementation": {ours: "torch.optim.AdamW(fused=True)",
                                             hf: "TrainingArguments.optim default (adamw_torch_fused)"}},
            "schedule": {"warmup_steps": tcfg["warmup_steps"], "min_lr_ratio": tcfg["min_lr_ratio"], "steps": settings["warmup"] + settings["window"],
                         "hf": "LambdaLR over vpt.train.schedule.warmup_cosine; the nearest built-in, cosine_with_min_lr, "
                               "differs only in warm-up (lr*s/W at step s where ours is lr*(s+1)/W)"},
            "learner": settings["learner_path"], "packed_dir": settings["packed_dir"],
            "timing": "wall clock from the end of warm-up step W to the end of step W+T; everything a step costs is inside",
            "peak_mem": "CUDA max_memory_allocated" if cuda else "process peak RSS (VmHWM), reset at the window start",
        },
        "machine": machine(settings["device"]),
        "tokens_per_s": tokens,
        "step_s": compare("step_s_mean"),
        "tokens_per_s_at_median_step": compare("tokens_per_s_at_median_step"),
        "peak_mem_bytes": compare("peak_mem_bytes"),
        "final_loss": {ours: arm_summary(rows, ours, "final_loss"), hf: arm_summary(rows, hf, "final_loss"),
                       "max_relative_gap": max(loss_gap) if loss_gap else None},
        "runs": rows,
    }


def run_benchmark(settings: dict[str, Any], repeats: int, isolate: bool = True) -> dict[str, Any]:
    """R repeats of both arms in ABBA order, each run in a fresh process (isolate=False: in this one, for tests)."""
    from vpt.bench.sidebyside import alternate

    rows = alternate(ARMS, repeats, measure, settings, isolate=isolate, desc="bench trainer")
    return summarize(settings, rows, repeats)
