"""The learner: any AutoModelForCausalLM, by hub id + pinned revision or a local directory,
or (embedded default) a tiny model built from an architecture config and trained from scratch."""

from __future__ import annotations

from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel

from vpt.errors import VptError


def build_from_architecture(arch: dict[str, Any], vocab_size: int, eos_id: int, pad_id: int, attn: str) -> PreTrainedModel:
    arch = dict(arch)
    model_type = arch.pop("model_type", "qwen2")
    vocab_size = max(vocab_size, int(arch.pop("vocab_size", 0)))  # a model-shaped vocabulary may exceed the tokenizer's
    cfg = AutoConfig.for_model(model_type, vocab_size=vocab_size, eos_token_id=eos_id, bos_token_id=eos_id, pad_token_id=pad_id, **arch)
    return AutoModelForCausalLM.from_config(cfg, attn_implementation=attn)


def load_learner(path: str, revision: str | None, dtype: torch.dtype, attn: str) -> PreTrainedModel:
    try:
        return AutoModelForCausalLM.from_pretrained(path, revision=revision, dtype=dtype, attn_implementation=attn)
    except (OSError, ValueError) as e:
        raise VptError(f"cannot load learner from {path!r} (revision {revision}): {e}") from e


def add_lora(model: PreTrainedModel, r: int, alpha: int, dropout: float, target_modules: list[str]) -> Any:
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules))
