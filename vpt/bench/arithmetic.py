"""Memory arithmetic of config/paper.yaml's learners: what the weights, gradients and AdamW
states of each need per GPU, for each `train.weights` choice and FSDP2 world size.

Parameter counts come from the models themselves, instantiated on the meta device from each
hub config.json's shape (no weights, no network). Activations are not in this arithmetic: they
are measured (`vpt bench memory`, `vpt bench gpu`).

    python -m vpt.bench.arithmetic        # the README's table, as markdown
"""

from __future__ import annotations

from typing import Any

from vpt.bench.learners import QWEN15_05B

# config.json of Qwen/Qwen1.5-4B and Qwen/Qwen1.5-7B (the shape fields; the revisions config/paper.yaml pins)
QWEN15_4B = {**QWEN15_05B, "hidden_size": 2560, "intermediate_size": 6912, "num_hidden_layers": 40,
             "num_attention_heads": 20, "num_key_value_heads": 20, "tie_word_embeddings": False}
QWEN15_7B = {**QWEN15_05B, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
             "num_attention_heads": 32, "num_key_value_heads": 32, "tie_word_embeddings": False}
SHAPES = {"qwen1.5-0.5b": QWEN15_05B, "qwen1.5-4b": QWEN15_4B, "qwen1.5-7b": QWEN15_7B}
RANKS = {"qwen1.5-0.5b": 1, "qwen1.5-4b": 4, "qwen1.5-7b": 8}  # config/paper.yaml slurm.resources train/<model>

# Bytes per parameter held through a step (vpt.train.precision):
#   float32  weights 4 + gradients 4 + AdamW moments 8
#   bfloat16 weights 2 + fp32 masters 4 + moments 8 + gradients: bf16 (2) in backward, fp32 (4) at the
#            optimizer step (MasterWeights.pull_grads frees each bf16 one as it makes the fp32 one)
BYTES_PER_PARAM = {"float32": 16, "bfloat16": 2 + 4 + 8 + 4}
PAPER_PEAK_05B_GB = 15.71  # Table 3: the 0.5B baseline's peak at 32 x 1024 on one H100


def parameters(shape: dict[str, Any]) -> int:
    """The parameter count of a transformers model of this shape (tied weights counted once)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    arch = dict(shape)
    cfg = AutoConfig.for_model(arch.pop("model_type"), **arch)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    return sum(p.numel() for p in model.parameters())  # parameters() yields a tied tensor once


def state_gb(params: int, weights: str, ranks: int) -> float:
    """Weights, gradients and optimizer state per GPU, in GB (1e9 bytes), sharded over `ranks`."""
    return params * BYTES_PER_PARAM[weights] / ranks / 1e9


def table() -> str:
    rows = ["| learner | parameters | GPUs (FSDP2) | fp32 weights + AdamW per GPU | bf16 weights + fp32 masters per GPU |",
            "|---|---|---|---|---|"]
    for name, shape in SHAPES.items():
        n, r = parameters(shape), RANKS[name]
        bf16 = f"{state_gb(n, 'bfloat16', r):.1f} GB" if r == 1 else "— (one process only)"
        rows.append(f"| {name} | {n / 1e9:.2f} B | {r} | {state_gb(n, 'float32', r):.1f} GB | {bf16} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
