"""Vision as a task of the value trainer (vpt.train.task): DINO self-supervision of a timm ViT on
the images of a normalized table, with the fixed multi-crop views (method `dino`: no designer,
no evaluators). The trainer's loop, optimizer, lr schedule, clipping, checkpoints and exact resume
are the language runs' own.

Per learner step, for each micro-batch of this rank's rows of the batch: multi-crop views
(vpt.vision.multicrop, one generator per image from (seed, step, row)) -> teacher on the global
crops, student on all crops, DINO loss normalised by the whole batch's rows -> backward.
After the optimizer step (after_update): the center from this step's teacher logits, then the
teacher's EMA toward the student with this step's momentum. Schedules (momentum, teacher
temperature) are arrays over the steps, like the trainer's learning rate.

The learner module is student + teacher + loss center (vpt.vision.dino), so the trainer's
sharded checkpoint holds all three. final/ is the teacher's backbone (DINO's evaluated network)
in the vpt.vision.backbone format, plus the heads and center (dino_heads.safetensors) for a
later continued SSL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vpt.dist import World, rank_rows, sum_scalar
from vpt.errors import VptError
from vpt.io import fingerprint, write_json
from vpt.losses.dino import DINOLoss
from vpt.train.config import TrainConfig
from vpt.train.loop import Trainer
from vpt.train.precision import cast_parameters
from vpt.train.schedule import cosine_to, linear_warmup
from vpt.train.task import Autocast, Backward, LearnerStep, Phase, Scope, micro_batches
from vpt.vision.backbone import create_backbone, normalisation, save_backbone
from vpt.vision.data import ImageBatches
from vpt.vision.dino import DinoLearner
from vpt.vision.head import DINOHead
from vpt.vision.multicrop import MultiCropConfig, multi_crop

HEADS_FILE = "dino_heads.safetensors"  # the heads and center beside the saved backbone
TEACHER = "teacher.backbone."  # the state-dict prefix of the saved backbone


@dataclass
class VisionRunSpec:
    """Where a DINO run reads and writes, beyond the training hyper-parameters."""

    run_dir: Path
    table: Path  # a normalized image table (id, image bytes); labels, if any, are not read
    backbone: dict[str, Any]  # a backbone spec (vpt.vision.backbone): timm name, weights, architecture
    ssl: dict[str, Any]  # a validated `vision.ssl` section
    extra: dict[str, Any] = field(default_factory=dict)  # recorded in config.json


def image_seed(seed: int, step: int, row: int) -> int:
    """The seed of one image's views at one step (independent of ranks and micro-batches)."""
    return int(np.random.SeedSequence([seed, step, row]).generate_state(1, dtype=np.uint64)[0] >> 1)


class DinoTask:
    throughput_unit = "images"
    designer = None

    def __init__(self, cfg: TrainConfig, spec: VisionRunSpec) -> None:
        self.cfg, self.spec = cfg, spec
        self.evaluators: list[Any] = []
        self.units_per_batch = cfg.batch_size
        self._teacher_out: list[torch.Tensor] = []

    def record(self) -> dict[str, Any]:
        s = self.spec
        return {"table": str(s.table), "backbone": s.backbone, "ssl": s.ssl, **s.extra,
                "inputs": {"table": fingerprint(s.table),
                           "weights": fingerprint(s.backbone["file"]) if s.backbone.get("file") else None}}

    def build(self, device: torch.device, param_dtype: torch.dtype, world: World) -> None:
        cfg, ssl = self.cfg, self.spec.ssl
        self.device, self.world = device, world
        rank_rows(cfg.batch_size, world)  # a batch that does not split over the ranks: an error now
        backbone = create_backbone(self.spec.backbone)
        self.mean, self.std = normalisation(backbone)
        head = DINOHead(backbone.num_features, ssl["out_dim"], ssl["hidden_dim"], ssl["bottleneck_dim"], ssl["head_layers"])
        learner = DinoLearner(backbone, head, DINOLoss(ssl["out_dim"], ssl["student_temp"], ssl["center_momentum"]))
        if param_dtype == torch.bfloat16:
            cast_parameters(learner, param_dtype)  # the center buffer stays fp32
        else:
            learner = learner.to(param_dtype)
        self.learner = learner.to(device).train()
        self.crops = MultiCropConfig.from_ssl(ssl)
        self.data = ImageBatches(self.spec.table, cfg.batch_size, cfg.seed)
        self.momentum = cosine_to(cfg.steps, ssl["momentum_base"], 1.0)
        self.teacher_temp = linear_warmup(cfg.steps, ssl["teacher_temp"], ssl["teacher_temp_final"], ssl["teacher_temp_warmup_steps"])

    def next_batch(self) -> tuple[int, list[torch.Tensor]]:
        return self.data.next()

    def learner_step(self, batch: tuple[int, list[torch.Tensor]], meta: bool, autocast: Autocast,
                     phase: Phase, backward: Backward) -> LearnerStep:
        step, images = batch  # step: the 0-based index of this batch (= the trainer's step)
        total = len(images)  # the global batch: every rank's loss is its share of the whole
        mine = rank_rows(total, self.world)
        rows = list(range(total))[mine]
        temp = float(self.teacher_temp[step])
        losses, self._teacher_out = [], []
        for part in micro_batches(len(rows), self.cfg.micro_batch_size):
            idx = rows[part]
            with phase("multicrop"):
                gens = [torch.Generator().manual_seed(image_seed(self.cfg.seed, step, r)) for r in idx]
                g, loc = multi_crop([images[r] for r in idx], self.crops, self.mean, self.std, gens)
            g, loc = [x.to(self.device) for x in g], [x.to(self.device) for x in loc]
            with autocast():
                loss, teacher = self.learner(g, loc, temp, denominator=total)
            backward(loss)
            losses.append(loss.detach())
            self._teacher_out.append(torch.stack(teacher))  # (G, b, K)
        if step < self.spec.ssl["freeze_last_layer_steps"]:  # DINO: prototypes fixed while the rest settles
            self.learner.student.head.last_layer.grad = None
        loss = losses[0] if len(losses) == 1 else torch.stack(losses).sum()
        if self.world.distributed:
            loss = torch.tensor(sum_scalar(loss), dtype=torch.float64)
        return LearnerStep(loss, {"ce": loss, "teacher_temp": torch.tensor(temp)})

    def value_objective(self, step: LearnerStep, scope: Scope) -> Any:
        raise VptError("method 'dino' has no designer: there is no value objective to estimate")

    def end_meta_step(self) -> None:
        pass

    def designer_regulariser(self) -> torch.Tensor | None:
        return None

    def after_update(self, step: int) -> None:
        """The center from this step's teacher logits (with the center the loss used), then the
        EMA teacher with momentum[step - 1]: DINO's order, both after the student's update."""
        teacher = torch.cat(self._teacher_out, dim=1)  # (G, rows of this rank, K)
        self.learner.loss.update_center(list(teacher), rows=self.cfg.batch_size)
        self.learner.update_teacher(float(self.momentum[step - 1]))
        self._teacher_out = []

    def state_dict(self) -> dict[str, Any]:
        return {"data": self.data.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.data.load_state_dict(state["data"])

    def save_model(self, path: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """The teacher's backbone (load_backbone reads it), its heads and the center beside it."""
        from safetensors.torch import save_file

        sd = state_dict if state_dict is not None else self.learner.state_dict()
        backbone = {k[len(TEACHER):]: v for k, v in sd.items() if k.startswith(TEACHER)}
        save_backbone(self.learner.teacher.backbone, self.spec.backbone, path, backbone)
        heads = {k: v.detach().contiguous().cpu() for k, v in sd.items()
                 if k.startswith(("student.head.", "teacher.head.")) or k == "loss.center"}
        save_file(heads, str(Path(path) / HEADS_FILE))
        write_json(Path(path) / "dino.json", {"backbone": "teacher (EMA)", "method": self.cfg.method, "ssl": self.spec.ssl})


def vision_base_setup(cfg: dict[str, Any], run_dir: str | Path | None = None) -> tuple[TrainConfig, VisionRunSpec]:
    """(TrainConfig, VisionRunSpec) of the embedded tiny ViT's DINO pretraining from scratch;
    `run_dir` replaces the workflow's results/models/vision_base."""
    from vpt import paths
    from vpt.runs import vision_base_table, vision_base_train_section

    base = cfg["vision"]["base_model"]
    spec = VisionRunSpec(run_dir=Path(run_dir) if run_dir else paths.vision_base_run_dir(cfg), table=vision_base_table(cfg),
                         backbone={"timm": base["timm"], "architecture": base["architecture"]}, ssl=cfg["vision"]["ssl"],
                         extra={"preset": cfg["name"]})
    return TrainConfig.from_dict({**vision_base_train_section(cfg), "method": "dino"}), spec


def vision_trainer(cfg: TrainConfig, spec: VisionRunSpec, device: str | torch.device | None = None) -> Trainer:
    """The value trainer on the DINO task of `spec`."""
    if cfg.method != "dino":
        raise VptError(f"the vision task trains method 'dino', not {cfg.method!r}")
    return Trainer(cfg, DinoTask(cfg, spec), spec.run_dir, device)
