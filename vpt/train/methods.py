"""The compute-matched training methods, each registered once with what it needs.

Everything that lists methods reads this registry: vpt.train.config (METHODS, VALUE_METHODS,
SOFT_METHODS), vpt.grid (FEEDBACK_METHODS), the CLI's --method choices and `vpt train --help`,
the lab's method checks and its Snakemake wildcards. The config schema keeps its own enums (it is
plain YAML); tests/test_registry.py fails when they differ from this registry.
"""

from __future__ import annotations

from dataclasses import dataclass

from vpt.registry import Registry, help_table


@dataclass(frozen=True)
class Method:
    help: str  # one line, shown by `vpt train --help`
    designer: bool = False  # a task designer trained by meta-updates on the value V
    feedback: bool = False  # reads the downstream feedback set (g_down)
    soft: bool = False  # trains on soft targets over the top-K rather than the one-hot next token
    modalities: tuple[str, ...] = ("language",)  # the tasks that train it: language (vpt.language.task), vision (vpt.vision.task)
    random_masks: bool = False  # vision: the global crops are masked by random masks (no designer, no feedback)

    @property
    def masks(self) -> str | None:
        """Vision: where the student's global-crop masks come from: designer | random | None (unmasked)."""
        return "designer" if self.designer else "random" if self.random_masks else None


METHOD_REGISTRY: Registry[Method] = Registry("method")

METHOD_REGISTRY.register("ntp", Method("next-token prediction (baseline)"))
METHOD_REGISTRY.register("vpt", Method("designer trained on V = g_down^T g_pre: soft targets over the top-K (language), "
                                       "learned soft masks on the global crops (vision)",
                                       designer=True, feedback=True, soft=True, modalities=("language", "vision")))
METHOD_REGISTRY.register("random_feedback", Method("vpt with g_down replaced by a random vector of the same norm",
                                                   designer=True, feedback=True, soft=True, modalities=("language", "vision")))
METHOD_REGISTRY.register("uniform_smoothing", Method("fixed uniform soft target over the top-K (alpha fixed)", soft=True))
METHOD_REGISTRY.register("self_distill", Method("the learner's own renormalized top-K distribution (alpha fixed)", soft=True))
METHOD_REGISTRY.register("dino", Method("vision: DINO self-distillation with the fixed multi-crop views (baseline)",
                                        modalities=("vision",)))
METHOD_REGISTRY.register("random_masks", Method("vision: dino with random smooth masks of the target keep ratio on the global "
                                                "crops (no designer, no feedback)", modalities=("vision",), random_masks=True))

# The methods of each modality: the language lists (grid, probe, lab, `--method`) hold only language's.
LANGUAGE_METHODS = METHOD_REGISTRY.where(lambda m: "language" in m.modalities)
VISION_METHODS = METHOD_REGISTRY.where(lambda m: "vision" in m.modalities)
VISION_ONLY_METHODS = tuple(m for m in VISION_METHODS if m not in LANGUAGE_METHODS)


def methods_help() -> str:
    """The method list of `vpt train --help`."""
    return help_table((name, m.help) for name, m in METHOD_REGISTRY.items())
