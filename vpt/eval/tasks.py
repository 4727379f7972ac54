"""lm-evaluation-harness task configs for our evaluations, built from the download outputs
(local parquet, no hub access at evaluation time). Scoring uses vpt.eval.answers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from vpt.eval.answers import CALCULATOR, extract_omega, gsm8k_correct, omega_correct, pass_at_k

OMEGA_PROMPT = (
    "Solve the following problem step by step. Output only the final answer in a LaTeX box, "
    "like \\boxed{{answer}}.\n\n{problem}\nAnswer:"
)
MMLU_LETTERS = ["A", "B", "C", "D"]


def _parquet(files: dict[str, Path]) -> dict[str, Any]:
    return {"dataset_path": "parquet", "dataset_kwargs": {"data_files": {k: str(v) for k, v in files.items()}}}


def _formatter(template: str) -> Callable[[dict[str, Any]], str]:
    return lambda doc: template.format(**doc)


def gsm8k(test: Path, train: Path, prompt: str, max_gen_toks: int, stop: list[str]) -> dict[str, Any]:
    """Greedy decoding, exact match of the final number (Pass@1)."""

    def process(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
        return {"exact_match": float(gsm8k_correct(results[0], doc["final_answer"]))}

    return {
        "task": "vpt_gsm8k",
        **_parquet({"test": test, "train": train}),
        "test_split": "test",
        "fewshot_split": "train",
        "output_type": "generate_until",
        "doc_to_text": _formatter(prompt),
        "doc_to_target": lambda doc: " " + CALCULATOR.sub("", doc["answer"]),  # few-shot demonstrations
        "target_delimiter": "",
        "fewshot_delimiter": "\n\n",
        "generation_kwargs": {"until": stop, "do_sample": False, "max_gen_toks": max_gen_toks},
        "process_results": process,
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
    }


def gsm8k_passk(test: Path, train: Path, prompt: str, max_gen_toks: int, stop: list[str],
                n: int, ks: list[int], temperature: float, top_p: float) -> dict[str, Any]:
    """n samples per problem; Pass@k by the unbiased estimator for each k."""
    base = gsm8k(test, train, prompt, max_gen_toks, stop)

    def process(doc: dict[str, Any], results: list[list[str]] | list[str]) -> dict[str, float]:
        samples = results[0] if results and isinstance(results[0], list) else results
        c = sum(gsm8k_correct(s, doc["final_answer"]) for s in samples)
        return {f"pass@{k}": pass_at_k(len(samples), c, k) for k in ks}

    return {
        **base,
        "task": "vpt_gsm8k_passk",
        "repeats": n,
        "generation_kwargs": {"until": stop, "do_sample": True, "temperature": temperature, "top_p": top_p,
                              "max_gen_toks": max_gen_toks},
        "filter_list": [{"name": "samples", "filter": [{"function": "take_first_k", "k": n}]}],
        "process_results": process,
        "metric_list": [{"metric": f"pass@{k}", "aggregation": "mean", "higher_is_better": True} for k in ks],
    }


def mmlu(test: Path, limit_per_subject: int | None) -> dict[str, Any]:
    """lm-eval's standard zero-shot protocol: log-likelihood of ' A' ... ' D' after 'Answer:'."""

    def docs(dataset: Any) -> Any:
        if limit_per_subject is None:
            return dataset
        seen: dict[str, int] = {}

        def keep(doc: dict[str, Any]) -> bool:
            seen[doc["subject"]] = seen.get(doc["subject"], 0) + 1
            return seen[doc["subject"]] <= limit_per_subject

        return dataset.filter(keep)

    return {
        "task": "vpt_mmlu",
        **_parquet({"test": test}),
        "test_split": "test",
        "process_docs": docs,
        "output_type": "multiple_choice",
        "description": "The following are multiple choice questions (with answers) about {{subject.replace('_', ' ')}}.\n\n",
        "doc_to_text": lambda doc: doc["question"].strip() + "".join(
            f"\n{letter}. {choice}" for letter, choice in zip(MMLU_LETTERS, doc["choices"])
        ) + "\nAnswer:",
        "doc_to_choice": MMLU_LETTERS,
        "doc_to_target": lambda doc: int(doc["answer"]),
        "target_delimiter": " ",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
    }


def omega(split_file: Path, split: str, prompt: str, max_gen_toks: int) -> dict[str, Any]:
    """Paper A.4: instruction + problem + 'Answer:', greedy, boxed / Answer: / last-line extraction."""

    def process(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
        return {"exact_match": float(omega_correct(extract_omega(results[0]), doc["ground_truth"]))}

    return {
        "task": f"vpt_omega_{split}",
        **_parquet({split: split_file}),
        "test_split": split,
        "output_type": "generate_until",
        "doc_to_text": _formatter(prompt),
        "doc_to_target": "{{ground_truth}}",
        "generation_kwargs": {"until": ["\n\n\n"], "do_sample": False, "temperature": 0.0, "max_gen_toks": max_gen_toks},
        "process_results": process,
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
    }

