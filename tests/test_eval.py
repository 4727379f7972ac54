"""Evaluations through lm-evaluation-harness: scripted models bound the scores, MMLU matches a
direct log-likelihood computation, and OMEGA runs on its fixture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from lm_eval.api.model import LM

from vpt.data.download import download
from vpt.eval import tasks
from vpt.eval.answers import normalize_number, pass_at_k
from vpt.eval.run import evaluate

from conftest import SHIPPED

PROMPT = "Question: {question}\n Answer:"
STOP = ["Question:", "\n\n"]


class Scripted(LM):
    """A 'model' answering from the document itself: reply(doc, i) for the i-th sample."""

    def __init__(self, reply) -> None:
        super().__init__()
        self.reply = reply
        self.calls: dict[int, int] = {}

    def generate_until(self, requests):
        out = []
        for r in requests:
            i = self.calls.get(id(r.doc), 0)
            self.calls[id(r.doc)] = i + 1
            out.append(self.reply(r.doc, i))
        return out

    def loglikelihood(self, requests):
        raise NotImplementedError

    def loglikelihood_rolling(self, requests):
        raise NotImplementedError


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    download("gsm8k", {"schema": "gsm8k", "path": "json", "data_files": {
        "train": str(SHIPPED / "gsm8k/train.jsonl"), "test": str(SHIPPED / "gsm8k/test.jsonl")}}, root / "gsm8k")
    download("mmlu", {"schema": "mmlu", "path": "csv", "data_files": {"test": str(SHIPPED / "mmlu/test/*_test.csv")},
                      "read_options": {"column_names": ["question", "A", "B", "C", "D", "answer"]},
                      "column_from_filename": r"^(?P<subject>.+)_test\.csv$"}, root / "mmlu")
    download("omega", {"schema": "omega", "path": "json", "data_files": {
        "test_in": str(SHIPPED / "omega_fixture/*_test_in.jsonl"), "test_out": str(SHIPPED / "omega_fixture/*_test_out.jsonl")},
        "column_from_filename": r"^(?P<config>.+)_test_(in|out)\.jsonl$"}, root / "omega")
    return root


def gsm8k_task(raw: Path) -> dict:
    return tasks.gsm8k(raw / "gsm8k/test.parquet", raw / "gsm8k/train.parquet", PROMPT, 64, STOP)


def test_gold_solutions_score_100_and_wrong_numbers_0_on_all_of_gsm8k_test(raw: Path) -> None:
    gold = Scripted(lambda doc, i: " " + doc["answer"])
    summary, rows = evaluate(gold, "gsm8k", gsm8k_task(raw), None, 0, 0)
    assert summary["examples"] == 1319 and summary["metrics"]["exact_match"] == 1.0
    assert all(r["correct"] and r["extracted"] == r["gold"] for r in rows)
    wrong = Scripted(lambda doc, i: f" so the total is 5.\n#### {float(normalize_number(doc['final_answer'])) + 1:g}")
    summary, rows = evaluate(wrong, "gsm8k", gsm8k_task(raw), None, 0, 0)
    assert summary["metrics"]["exact_match"] == 0.0 and not any(r["correct"] for r in rows)
    assert summary["throughput"]["examples_per_s"] > 0


def test_pass_at_k_through_the_harness(raw: Path) -> None:
    n, ks = 8, [1, 2, 4, 8]

    def correct_count(doc) -> int:
        return int(doc["final_answer"].replace("-", "")) % (n + 1)  # 0..n correct samples per problem

    def reply(doc, i):
        return f" #### {doc['final_answer']}" if i < correct_count(doc) else " #### -1"

    cfg = tasks.gsm8k_passk(raw / "gsm8k/test.parquet", raw / "gsm8k/train.parquet", PROMPT, 64, STOP, n, ks, 0.6, 0.95)
    summary, rows = evaluate(Scripted(reply), "gsm8k_passk", cfg, 40, 0, 0)
    test = pd.read_parquet(raw / "gsm8k/test.parquet").head(40)
    for k in ks:
        expected = np.mean([pass_at_k(n, correct_count(d), k) for _, d in test.iterrows()])
        assert summary["metrics"][f"pass@{k}"] == pytest.approx(expected)
    assert len(rows[0]["completions"]) == n


def test_omega_fixture_boxed_gold_scores_100(raw: Path) -> None:
    for split in ("test_in", "test_out"):
        cfg = tasks.omega(raw / f"omega/{split}.parquet", split, tasks.OMEGA_PROMPT, 32)
        summary, rows = evaluate(Scripted(lambda doc, i: f"steps...\nso \\boxed{{{doc['ground_truth']}}}"), "omega_id", cfg, None, 0, 0)
        assert summary["metrics"]["exact_match"] == 1.0 and len(rows) == 8
        assert set(summary["metrics"]["per_config"]) == {"arithmetic_gcd", "algebra_linear_equation"}
        summary, _ = evaluate(Scripted(lambda doc, i: "Answer: 123456"), "omega_id", cfg, None, 0, 0)
        assert summary["metrics"]["exact_match"] == 0.0


def test_mmlu_matches_a_direct_loglikelihood_computation(raw: Path, tmp_path: Path) -> None:
    from lm_eval.models.huggingface import HFLM

    from vpt.data.tokenizer import train_bpe
    from vpt.models.learner import build_from_architecture

    test = pd.read_parquet(raw / "mmlu/test.parquet")
    tok = train_bpe(test["question"].head(2000), 500, 2, tmp_path / "tok")
    torch.manual_seed(0)
    arch = {"model_type": "qwen2", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "intermediate_size": 64, "max_position_embeddings": 1024}
    model = build_from_architecture(arch, len(tok), tok.eos_token_id, tok.pad_token_id, "sdpa").eval()
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    lm = HFLM(pretrained=str(tmp_path / "m"), tokenizer=str(tmp_path / "m"), device="cpu", batch_size=16, max_length=1024, dtype="float32")
    cfg = tasks.mmlu(raw / "mmlu/test.parquet", limit_per_subject=2)
    summary, rows = evaluate(lm, "mmlu", cfg, None, 0, 0)
    assert summary["metrics"]["subjects"] == 57 and summary["examples"] == 114

    firsts = test.groupby("subject", sort=False).head(2).reset_index(drop=True)
    direct = []
    for _, doc in firsts.iterrows():
        context = (f"The following are multiple choice questions (with answers) about {doc['subject'].replace('_', ' ')}.\n\n"
                   + cfg["doc_to_text"](doc))
        ctx = tok(context, add_special_tokens=False)["input_ids"]
        scores = []
        for letter in "ABCD":
            whole = tok(context + " " + letter, add_special_tokens=False)["input_ids"]
            cont = whole[len(ctx):]
            with torch.no_grad():
                logp = model(input_ids=torch.tensor([whole])).logits[0].log_softmax(-1)
            scores.append(sum(logp[len(whole) - len(cont) - 1 + j, t].item() for j, t in enumerate(cont)))
        direct.append((doc["id"], int(np.argmax(scores)), int(doc["answer"])))
    assert sorted((r["id"], r["prediction"], r["gold"]) for r in rows) == sorted(direct)  # same answer, every question
    assert summary["metrics"]["acc_micro"] == pytest.approx(np.mean([p == g for _, p, g in direct]))


def test_peft_adapter_checkpoint_loads_through_make_lm(raw: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    from vpt.data.tokenizer import train_bpe
    from vpt.eval.run import make_lm
    from vpt.models.learner import build_from_architecture

    test = pd.read_parquet(raw / "mmlu/test.parquet")
    tok = train_bpe(test["question"].head(500), 400, 2, tmp_path / "tok")
    arch = {"model_type": "qwen2", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 4,
            "num_key_value_heads": 2, "intermediate_size": 64, "max_position_embeddings": 1024}
    base = build_from_architecture(arch, len(tok), tok.eos_token_id, tok.pad_token_id, "sdpa")
    base.save_pretrained(tmp_path / "base")
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tmp_path / "base")  # so the adapter records its base path
    peft_model = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"]))
    peft_model.save_pretrained(tmp_path / "adapter")
    tok.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter/adapter_config.json").exists() and not (tmp_path / "adapter/config.json").exists()
    lm = make_lm(tmp_path / "adapter", batch_size=8, max_length=1024, device="cpu")
    summary, rows = evaluate(lm, "mmlu", tasks.mmlu(raw / "mmlu/test.parquet", limit_per_subject=1), None, 0, 0)
    assert summary["metrics"]["subjects"] == 57 and len(rows) == 57


def test_a_saved_model_evaluates_with_the_tokenizer_it_was_trained_with(raw: Path, tmp_path: Path) -> None:
    """Our BPE saved next to a qwen2 config: AutoTokenizer would rebuild it as a digit-splitting
    Qwen2 tokenizer; the model directory must give back exactly the training tokenization."""
    from vpt.data.tokenizer import load_tokenizer, train_bpe
    from vpt.eval.run import make_lm
    from vpt.models.learner import build_from_architecture

    texts = ["Tom has 1234 apples and 56 pears. 1234+56=1290"] * 50 + list(pd.read_parquet(raw / "mmlu/test.parquet")["question"].head(300))
    tok = train_bpe(texts, 400, 2, tmp_path / "tok")
    arch = {"model_type": "qwen2", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 4,
            "num_key_value_heads": 2, "intermediate_size": 64, "max_position_embeddings": 1024}
    model = build_from_architecture(arch, len(tok), tok.eos_token_id, tok.pad_token_id, "sdpa")
    model.save_pretrained(tmp_path / "final")
    tok.save_pretrained(tmp_path / "final")
    s = "Question: Tom has 1234 apples.\n Answer: 1234+56=1290"
    want = tok(s)["input_ids"]
    assert len(want) < len(s) // 2  # numbers are merged tokens, not one per digit
    assert load_tokenizer(tmp_path / "final")(s)["input_ids"] == want
    assert make_lm(tmp_path / "final", batch_size=2, max_length=64, device="cpu").tok_encode(s) == want
