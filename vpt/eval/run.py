"""Run one evaluation task on one checkpoint through lm-evaluation-harness and write
results/eval/<run>/<task>.json (metrics, throughput) and <task>.jsonl (one row per example)."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from vpt import paths
from vpt.errors import VptError
from vpt.eval import tasks
from vpt.eval.answers import extract_gsm8k, extract_omega, normalize_number, normalize_omega
from vpt.io import atomic_dir

TASKS = ("gsm8k", "gsm8k_passk", "mmlu", "omega_id", "omega_ood")


def task_config(cfg: dict[str, Any], task: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(lm-eval task config, evaluate() options) for one of TASKS."""
    e = cfg["eval"]
    if task in ("gsm8k", "gsm8k_passk"):
        g = e["gsm8k"]
        test, train = paths.raw_split(cfg, g["dataset"], g["split"]), paths.raw_split(cfg, g["dataset"], g["fewshot_split"])
        if task == "gsm8k":
            tc = tasks.gsm8k(test, train, g["prompt"], g["max_gen_toks"], g["stop"])
            return tc, {"limit": g["limit"], "num_fewshot": g["n_shot"], "seed": g["seed"]}
        p = e["passk"]
        tc = tasks.gsm8k_passk(test, train, g["prompt"], g["max_gen_toks"], g["stop"], p["n"], p["ks"], p["temperature"], p["top_p"])
        return tc, {"limit": p["limit"], "num_fewshot": g["n_shot"], "seed": g["seed"]}
    if task == "mmlu":
        m = e["mmlu"]
        return tasks.mmlu(paths.raw_split(cfg, m["dataset"], m["split"]), m["limit_per_subject"]), {"limit": None, "num_fewshot": 0, "seed": 0}
    if task in ("omega_id", "omega_ood"):
        o = e["omega"]
        split = o["id_split"] if task == "omega_id" else o["ood_split"]
        return tasks.omega(paths.raw_split(cfg, o["dataset"], split), split, o["prompt"], o["max_gen_toks"]), {"limit": o["limit"], "num_fewshot": 0, "seed": 0}
    raise VptError(f"unknown evaluation task {task!r}; choose one of: {', '.join(TASKS)}")


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


def _rows(task: str, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for s in samples:
        doc = s["doc"]
        row: dict[str, Any] = {"doc_id": s["doc_id"], "id": doc.get("id")}
        if task == "mmlu":
            lls = [float(r[0]) for r in s["filtered_resps"]]
            row.update(subject=doc["subject"], loglikelihoods=lls, prediction=int(np.argmax(lls)), gold=int(doc["answer"]), correct=bool(s["acc"]))
        elif task == "gsm8k":
            out = s["filtered_resps"][0]
            row.update(completion=out, extracted=extract_gsm8k(out), gold=normalize_number(doc["final_answer"]), correct=bool(s["exact_match"]))
        elif task == "gsm8k_passk":
            outs = s["filtered_resps"][0]
            row.update(completions=outs, extracted=[extract_gsm8k(o) for o in outs], gold=normalize_number(doc["final_answer"]),
                       **{k: v for k, v in s.items() if k.startswith("pass@")})
        else:
            out = s["filtered_resps"][0]
            row.update(config=doc.get("config"), completion=out, extracted=extract_omega(out),
                       gold=normalize_omega(doc["ground_truth"]), correct=bool(s["exact_match"]))
        rows.append(row)
    return sorted(rows, key=lambda r: r["doc_id"])


def evaluate(lm: Any, task: str, task_cfg: dict[str, Any], limit: int | None, num_fewshot: int, seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    t0 = time.perf_counter()
    res = lm_eval.simple_evaluate(
        model=lm, tasks=[task_cfg], num_fewshot=num_fewshot, limit=limit, log_samples=True,
        random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
        bootstrap_iters=0, task_manager=TaskManager(include_defaults=False),  # our tasks are in-memory configs; indexing the built-in ones costs ~14 s
    )
    seconds = time.perf_counter() - t0
    name = task_cfg["task"]
    rows = _rows(task, res["samples"][name])
    metrics = {k.split(",")[0]: v for k, v in res["results"][name].items() if "," in k and "stderr" not in k}
    if task == "mmlu":
        by_subject: dict[str, list[bool]] = {}
        for r in rows:
            by_subject.setdefault(r["subject"], []).append(r["correct"])
        per_subject = {s: float(np.mean(v)) for s, v in sorted(by_subject.items())}
        metrics = {"acc_micro": float(np.mean([r["correct"] for r in rows])), "acc_macro": float(np.mean(list(per_subject.values()))),
                   "subjects": len(per_subject), "per_subject": per_subject}
    if task.startswith("omega"):
        by_config: dict[str, list[bool]] = {}
        for r in rows:
            by_config.setdefault(str(r["config"]), []).append(r["correct"])
        metrics["per_config"] = {c: float(np.mean(v)) for c, v in sorted(by_config.items())}
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
