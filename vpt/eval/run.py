"""Run one evaluation task on one checkpoint through lm-evaluation-harness and write
results/eval/<run>/<task>.json (metrics, throughput) and <task>.jsonl (one row per example)."""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vpt.errors import VptError
from vpt.eval.registry import TASK_REGISTRY
from vpt.io import atomic_dir


def task_config(cfg: dict[str, Any], task: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(lm-eval task config, evaluate() options) for a registered task (vpt.eval.registry)."""
    return TASK_REGISTRY.get(task).build(cfg)


def make_lm(checkpoint: Path, batch_size: int, max_length: int, device: str) -> Any:
    """vLLM on a GPU when it is installed, else Hugging Face generation; PEFT adapters load too."""
    checkpoint = Path(checkpoint)
    if not (checkpoint / "config.json").exists() and not (checkpoint / "adapter_config.json").exists():
        raise VptError(f"{checkpoint} holds no saved model (config.json or adapter_config.json)")
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    adapter = checkpoint / "adapter_config.json"
    if device.startswith("cuda") and importlib.util.find_spec("vllm") is not None and not adapter.exists():
        from lm_eval.models.vllm_causallms import VLLM

        return VLLM(pretrained=str(checkpoint), tokenizer=str(checkpoint), batch_size="auto", max_length=max_length, dtype="bfloat16")
    from lm_eval.models.huggingface import HFLM

    from vpt.data.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(checkpoint)  # the tokenizer the model was trained with (see load_tokenizer)
    dtype = "bfloat16" if device.startswith("cuda") else "float32"
    if adapter.exists():
        base = json.loads(adapter.read_text()).get("base_model_name_or_path")
        if not base:
            raise VptError(f"{adapter} names no base model (base_model_name_or_path); cannot load the adapter")
        return HFLM(pretrained=base, peft=str(checkpoint), tokenizer=tokenizer, device=device,
                    batch_size=batch_size, max_length=max_length, dtype=dtype)
    return HFLM(pretrained=str(checkpoint), tokenizer=tokenizer, device=device, batch_size=batch_size,
                max_length=max_length, dtype=dtype)


def _rows(row: Callable[[dict[str, Any]], dict[str, Any]], samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = [{"doc_id": s["doc_id"], "id": s["doc"].get("id"), **row(s)} for s in samples]
    return sorted(rows, key=lambda r: r["doc_id"])


def evaluate(lm: Any, task: str, task_cfg: dict[str, Any], limit: int | None, num_fewshot: int, seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    entry = TASK_REGISTRY.get(task)
    t0 = time.perf_counter()
    res = lm_eval.simple_evaluate(
        model=lm, tasks=[task_cfg], num_fewshot=num_fewshot, limit=limit, log_samples=True,
        random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
        bootstrap_iters=0, task_manager=TaskManager(include_defaults=False),  # our tasks are in-memory configs; indexing the built-in ones costs ~14 s
    )
    seconds = time.perf_counter() - t0
    name = task_cfg["task"]
    rows = _rows(entry.row, res["samples"][name])
    metrics = {k.split(",")[0]: v for k, v in res["results"][name].items() if "," in k and "stderr" not in k}
    metrics = entry.summarize(metrics, rows)
    summary = {
        "task": task, "examples": len(rows), "metrics": metrics,
        "throughput": {"seconds": round(seconds, 3), "examples_per_s": round(len(rows) / seconds, 3)},
        "num_fewshot": num_fewshot, "limit": limit, "seed": seed,
        "lm_eval_version": lm_eval.__version__ if hasattr(lm_eval, "__version__") else None,
        "generation": task_cfg.get("generation_kwargs"),
    }
    return summary, rows


def write_results(out_dir: Path, task: str, summary: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    with atomic_dir(out_dir, last=(f"{task}.json",)) as tmp:
        (tmp / f"{task}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (tmp / f"{task}.json").write_text(json.dumps(summary, indent=2) + "\n")
