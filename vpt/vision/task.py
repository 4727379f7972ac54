"""Vision as a task of the value trainer (vpt.train.task): DINO self-supervision of a timm ViT on
the images of a normalized table, for every vision method (vpt.train.methods):

    dino             the fixed multi-crop views (the baseline; also the embedded base pretraining)
    vpt              the student's global crops masked by the designer's soft masks (vpt.vision.masks),
                     the designer trained on V = g_down^T g_pre with dense feedback (vpt.vision.feedback)
    random_feedback  vpt with g_down replaced by a random vector of the same norm
    random_masks     random smooth masks of the target keep ratio, no designer, no feedback

Per learner step, for each micro-batch of this rank's rows: multi-crop views (one generator per
image from (seed, step, row)) -> the masks, under no_grad (the SSL update never trains the
designer) -> teacher on the unmasked global crops, student on the masked views, DINO loss
normalised by the whole batch's rows -> backward. After the optimizer step (after_update): the
center from this step's teacher logits, then the teacher's EMA with this step's momentum.

Per meta step (the trainer's order, vpt.value.meta): the feedback heads train on their train pools
with the backbone frozen, g_down over the last k student blocks on the meta pools, then the value
objective (vpt.vision.objective) on a separate unlabeled meta-SSL batch (its own seeded stream, so
every method reads the same learner batches) and the regulariser
lambda_keep * (mean m - rho)^2 + lambda_tv * TV(m) on that batch's masks.

The learner module is student + teacher + loss center (vpt.vision.dino), so the trainer's sharded
checkpoint holds all three; the feedback heads and their optimizers are the task's tensor state.
final/ is the teacher's backbone (vpt.vision.backbone format) plus the heads and center.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vpt import paths
from vpt.dist import World, rank_rows, sum_scalar
from vpt.errors import VptError
from vpt.io import fingerprint, write_json
from vpt.losses.dino import DINOLoss
from vpt.train.config import TrainConfig
from vpt.train.loop import Trainer
from vpt.train.methods import METHOD_REGISTRY, VISION_METHODS
from vpt.train.precision import cast_parameters
from vpt.train.schedule import cosine_to, linear_warmup
from vpt.train.task import Autocast, Backward, LearnerStep, Phase, Scope, micro_batches
from vpt.vision.backbone import normalisation, save_backbone
from vpt.vision.data import ImageBatches
from vpt.vision.dino import DinoLearner
from vpt.vision.head import DINOHead
from vpt.vision.multicrop import MultiCropConfig, multi_crop
from vpt.vision.setup import VisionRunSpec
from vpt.vision.views import MaskViews, image_seed

HEADS_FILE = "dino_heads.safetensors"  # the heads and center beside the saved backbone
TEACHER = "teacher.backbone."  # the state-dict prefix of the saved backbone
META_STREAM = 1  # salt of the meta-SSL batches' seeds: a stream apart from the learner's


class VisionTask:
    throughput_unit = "images"

    def __init__(self, cfg: TrainConfig, spec: VisionRunSpec) -> None:
        if cfg.method not in VISION_METHODS:
            raise VptError(f"the vision task trains one of {', '.join(VISION_METHODS)}, not {cfg.method!r}")
        self.cfg, self.spec = cfg, spec
        self.method = METHOD_REGISTRY.get(cfg.method)
        if self.method.masks is not None and spec.designer is None:
            raise VptError(f"method {cfg.method!r} masks the global crops: it needs a `vision.designer` section")
        self.designer: torch.nn.Module | None = None
        self.evaluators: list[Any] = []
        self.units_per_batch = cfg.batch_size
        self._teacher_out: list[torch.Tensor] = []
        self._meta: dict[str, Any] = {}

    def record(self) -> dict[str, Any]:
        s = self.spec
        files = {"table": s.table, "weights": s.backbone.get("file"), "init": s.init, **s.inputs}
        return {"table": str(s.table), "backbone": s.backbone, "ssl": s.ssl, "init": str(s.init) if s.init else None,
                "designer": s.designer if self.method.masks else None, **s.extra,
                "inputs": {k: fingerprint(v) if v else None for k, v in files.items()}}

    # ------------------------------------------------------------------ setup
    def build(self, device: torch.device, param_dtype: torch.dtype, world: World) -> None:
        cfg, ssl = self.cfg, self.spec.ssl
        self.device, self.world = device, world
        rank_rows(cfg.batch_size, world)  # a batch that does not split over the ranks: an error now
        if world.distributed and self.method.designer:
            raise VptError(f"method {cfg.method!r}: the vision value step runs on one process (FSDP for dino only)")
        self.learner = self._learner(param_dtype).to(device).train()
        self.mean, self.std = normalisation(self.learner.student.backbone)
        self.crops = MultiCropConfig.from_ssl(ssl)
        self.data = ImageBatches(self.spec.table, cfg.batch_size, cfg.seed)
        self.momentum = cosine_to(cfg.steps, ssl["momentum_base"], 1.0)
        self.teacher_temp = linear_warmup(cfg.steps, ssl["teacher_temp"], ssl["teacher_temp_final"], ssl["teacher_temp_warmup_steps"])
        self.input_dtype = torch.float64 if param_dtype == torch.float64 else torch.float32
        self.views = MaskViews(self.method.masks, self.spec.designer or {}, cfg.seed) if self.method.masks else None
        if self.method.designer:
            self._init_value()

    def _learner(self, param_dtype: torch.dtype) -> DinoLearner:
        from vpt.vision.backbone import create_backbone, load_backbone

        ssl = self.spec.ssl
        backbone = load_backbone(self.spec.init)[0] if self.spec.init else create_backbone(self.spec.backbone)
        head = DINOHead(backbone.num_features, ssl["out_dim"], ssl["hidden_dim"], ssl["bottleneck_dim"], ssl["head_layers"])
        loss = DINOLoss(ssl["out_dim"], ssl["student_temp"], ssl["center_momentum"], ssl["centering"], ssl["sk_iterations"])
        learner = DinoLearner(backbone, head, loss)
        if self.spec.init and (self.spec.init / HEADS_FILE).exists():
            _load_heads(learner, self.spec.init / HEADS_FILE)
        if param_dtype == torch.bfloat16:
            cast_parameters(learner, param_dtype)  # the center buffer stays fp32
        else:
            learner = learner.to(param_dtype)
        return learner

    def _init_value(self) -> None:
        from vpt.vision.feedback import build_feedback
        from vpt.vision.masks import MaskDesignerConfig, build_mask_designer

        if self.spec.config is None:
            raise VptError(f"method {self.cfg.method!r} needs the feedback pools (vision.feedback): no config given")
        self.designer = build_mask_designer(MaskDesignerConfig.from_section(self.spec.designer or {}),
                                            self.spec.ssl["global_size"]).to(self.device, self.input_dtype)
        assert self.views is not None
        self.views.designer = self.designer
        self.evaluators = build_feedback(self.spec.config, self.learner.student.backbone, self.mean, self.std, self.device,
                                         self.input_dtype, self.cfg.micro_batch_size, seed=self.cfg.seed, world=self.world)
        meta_rows = self.cfg.value.meta_batch_size or self.cfg.batch_size
        self.meta_data = ImageBatches(self.spec.table, meta_rows, self.cfg.seed + META_STREAM)

    # ------------------------------------------------------------------ steps
    def next_batch(self) -> tuple[int, list[torch.Tensor]]:
        return self.data.next()

    def _multi_crop(self, images: list[torch.Tensor], rows: list[int], batch: int, stream: int = 0,
                    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        gens = [torch.Generator().manual_seed(image_seed(self.cfg.seed + stream, batch, r)) for r in rows]
        g, loc = multi_crop([images[r] for r in rows], self.crops, self.mean, self.std, gens)
        return ([x.to(self.device, self.input_dtype) for x in g], [x.to(self.device, self.input_dtype) for x in loc])

    def learner_step(self, batch: tuple[int, list[torch.Tensor]], meta: bool, autocast: Autocast,
                     phase: Phase, backward: Backward) -> LearnerStep:
        step, images = batch  # step: the 0-based index of this batch (= the trainer's step)
        total = len(images)  # the global batch: every rank's loss is its share of the whole
        rows = list(range(total))[rank_rows(total, self.world)]
        temp = float(self.teacher_temp[step])
        if step == 0 and self.views is not None and self.world.is_main:
            self.write_pictures(0)  # the masks before any designer update
        losses, keep, self._teacher_out = [], [], []
        for part in micro_batches(len(rows), self.cfg.micro_batch_size):
            idx = rows[part]
            with phase("multicrop"):
                g, loc = self._multi_crop(images, idx, step)
            views = None
            if self.views is not None:
                with phase("masks"), torch.no_grad():
                    views, masks = self.views.apply(g, loc, idx, step)
                keep.append(torch.stack([m.mean() for m in masks]).mean())
            with autocast():
                loss, teacher = self.learner(g, loc, temp, denominator=total, student_views=views)
            backward(loss)
            losses.append(loss.detach())
            self._teacher_out.append(torch.stack(teacher))  # (G, b, K)
        self._freeze(step)
        loss = losses[0] if len(losses) == 1 else torch.stack(losses).sum()
        if self.world.distributed:
            loss = torch.tensor(sum_scalar(loss), dtype=torch.float64)
        metrics = {"ce": loss, "teacher_temp": torch.tensor(temp)}
        if keep:
            metrics["mask_keep"] = torch.stack(keep).mean()
        return LearnerStep(loss, metrics, {"step": step, "temp": temp} if meta else None)

    def _freeze(self, step: int) -> None:
        """Gradients dropped (AdamW then skips those weights): the prototypes for the first
        freeze_last_layer_steps (DINO), the whole backbone for the first head_warmup_steps
        (released weights come without a DINO head: the head settles first, for every method)."""
        ssl, student = self.spec.ssl, self.learner.student
        if step < ssl["freeze_last_layer_steps"]:
            student.head.last_layer.grad = None
        if step < ssl["head_warmup_steps"]:
            for p in student.backbone.parameters():
                p.grad = None

    def value_objective(self, step: LearnerStep, scope: Scope) -> list[Any]:
        """One objective per micro-batch of this rank's rows of a fresh meta-SSL batch."""
        from vpt.vision.objective import VisionValueObjective

        assert self.designer is not None and self.views is not None and step.context is not None
        index, images = self.meta_data.next()
        rows = list(range(len(images)))
        g, loc = self._multi_crop(images, rows, index, stream=META_STREAM)
        self._meta = {"globals": g, "locals": loc}  # every row's crops: the regulariser sees the whole batch
        mine = rows[rank_rows(len(images), self.world)]
        out = []
        for part in micro_batches(len(mine), self.cfg.micro_batch_size):
            sel = mine[part]
            gp, lp = [x[sel] for x in g], [x[sel] for x in loc]
            with torch.no_grad():
                teacher = self.learner.teacher(gp)  # G x (b, K), the center frozen until after_update
            out.append(VisionValueObjective(self.learner, scope, self.designer, gp, lp, teacher, step.context["temp"],
                                            len(images), self.views.mask_all))
        return out

    def end_meta_step(self) -> None:
        self._meta = {}

    def designer_regulariser(self) -> torch.Tensor | None:
        assert self.views is not None
        return self.views.regulariser(self._meta["globals"], self._meta["locals"])

    def after_update(self, step: int) -> None:
        """The center from this step's teacher logits (with the center the loss used), then the
        EMA teacher with momentum[step - 1]: DINO's order, both after the student's update."""
        teacher = torch.cat(self._teacher_out, dim=1)  # (G, rows of this rank, K)
        self.learner.loss.update_center(list(teacher), rows=self.cfg.batch_size)
        self.learner.update_teacher(float(self.momentum[step - 1]))
        self._teacher_out = []
        if step == self.cfg.steps and self.views is not None and self.world.is_main:
            self.write_pictures(step)

    def write_pictures(self, step: int) -> None:
        """paths.mask_picture: the first images' crop | mask | masked view (vpt.vision.pictures)."""
        from vpt.vision.pictures import write_mask_pictures

        assert self.views is not None
        n = min(self.views.pictures, len(self.data.images))
        images = [self.data.decode(i) for i in range(n)]
        g, _ = self._multi_crop(images, list(range(n)), batch=0, stream=self.views.PICTURE_STREAM)
        with torch.no_grad():
            masks = self.views.masks([g[0]], list(range(n)), batch=0)[0]
        write_mask_pictures(paths.mask_picture(self.spec.run_dir, step), g[0].float().cpu(), masks.float().cpu(),
                            self.mean, self.std)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"data": self.data.state_dict()}
        if self.method.designer:
            state["meta_data"] = self.meta_data.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.data.load_state_dict(state["data"])
        if self.method.designer:
            self.meta_data.load_state_dict(state["meta_data"])

    def tensor_state(self) -> dict[str, Any]:
        return {ev.name: ev.state_dict() for ev in self.evaluators}

    def load_tensor_state(self, state: dict[str, Any]) -> None:
        for ev in self.evaluators:
            ev.load_state_dict(state[ev.name])

    def save_model(self, path: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """The teacher's backbone (load_backbone reads it), its heads and the center beside it."""
        from safetensors.torch import save_file

        sd = state_dict if state_dict is not None else self.learner.state_dict()
        backbone = {k[len(TEACHER):]: v for k, v in sd.items() if k.startswith(TEACHER)}
        spec = self.spec.backbone
        save_backbone(self.learner.teacher.backbone, spec, path, backbone)
        heads = {k: v.detach().contiguous().cpu() for k, v in sd.items()
                 if k.startswith(("student.head.", "teacher.head.")) or k == "loss.center"}
        save_file(heads, str(Path(path) / HEADS_FILE))
        write_json(Path(path) / "dino.json", {"backbone": "teacher (EMA)", "method": self.cfg.method, "ssl": self.spec.ssl})


def _load_heads(learner: DinoLearner, path: Path) -> None:
    """The student's and teacher's heads and the center from a saved model, when their shapes fit
    this run's vision.ssl (else the heads start fresh: head_warmup_steps is what settles them)."""
    from safetensors.torch import load_file

    saved = load_file(str(path))
    own = learner.state_dict()
    fits = {k: v for k, v in saved.items() if k in own and own[k].shape == v.shape}
    if len(fits) == len(saved):
        learner.load_state_dict(fits, strict=False)


def vision_trainer(cfg: TrainConfig, spec: VisionRunSpec, device: str | torch.device | None = None) -> Trainer:
    """The value trainer on the vision task of `spec`."""
    return Trainer(cfg, VisionTask(cfg, spec), spec.run_dir, device)


__all__ = ["HEADS_FILE", "VisionRunSpec", "VisionTask", "image_seed", "vision_trainer"]
