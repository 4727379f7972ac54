from __future__ import annotations

from pathlib import Path

import pytest

from vpt.cli import build_parser, main

from conftest import REPO, vpt


@pytest.mark.parametrize(
    "argv, words",
    [
        ([], ["data", "config", "bench"]),
        (["data"], ["synth", "download", "decontaminate", "tokenizer", "pack"]),
        (["data", "download"], ["load_dataset", "revision", "manifest.json"]),
        (["data", "decontaminate"], ["MinHash", "Jaccard", "report.json"]),
        (["data", "pack"], ["seq_len", "-100", "meta.json"]),
        (["data", "synth"], ["NuminaMath-CoT", "seed"]),
        (["data", "tokenizer"], ["from_pretrained", "BPE"]),
        (["bench", "decontaminate"], ["docs", "words"]),
        (["bench", "overhead"], ["--warmup", "window", "peak RSS", "CUDA events", "ntp vpt vpt ntp", "finite_difference",
                                 "--vision", "dino vs vpt", "images/s >= 0.85", "--synthetic-data", "overhead_vision.json"]),
        (["bench"], ["decontaminate", "trainer", "overhead", "memory", "precision", "gpu"]),
        (["bench", "memory"], ["micro_batch_size", "max_memory_allocated", "peak RSS", "fresh process", "meta_every 1", "not in `all`"]),
        (["bench", "precision"], ["bf16 autocast", "fp32 (reference)", "autograd", "--min-cosine", "recommendation"]),
        (["bench", "gpu"], ["10 minutes", "time-boxed", "--allow-cpu --tiny", "flash_attention_2", "Table 3", "vision",
                            "ViT-B/16", "--parts"]),
        (["bench", "trainer"], ["transformers.Trainer", "warm-up", "ABBA", "tokens/s", "target_met", "--repeats"]),
        (["train"], ["ntp", "vpt", "random_feedback", "uniform_smoothing", "self_distill", "resumes", "--stop-at",
                     "dino", "--vision-base", "vision_base", "EMA teacher"]),
        (["probe"], ["Pearson", "held-out", "eta"]),
        (["eval"], ["gsm8k_passk", "mmlu", "omega_id", "PEFT", "examples/s"]),
    ],
)
def test_help_explains(argv: list[str], words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([*argv, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for w in words:
        assert w in out, (w, out)


def test_unknown_dataset_lists_choices(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "download", "squad", "--config", str(REPO / "config/config.yaml")]) == 2
    err = capsys.readouterr().err
    assert "no dataset 'squad'" in err and "corpus, gsm8k, imagenet, mmlu" in err


def test_corrupt_source_via_cli(workdir: Path) -> None:
    (workdir / "config/corrupt.yaml").write_text(
        (workdir / "config/config.yaml").read_text().replace("data/synth/corpus/train.jsonl", "data/bad.jsonl")
    )
    (workdir / "data/bad.jsonl").write_text('{"problem": "p", "solution": "s"}\n{"problem": ')
    res = vpt("data", "download", "corpus", "--config", "config/corrupt.yaml", cwd=workdir)
    assert res.returncode == 2
    assert "data/bad.jsonl" in res.stderr and "JSON parse error" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (workdir / "data/raw/corpus/manifest.json").exists()
    assert not any(p.name.endswith(".tmp") for p in (workdir / "data/raw").iterdir())


def test_pretrained_tokenizer_path_loads_a_local_directory_like_a_hub_id(workdir: Path, tmp_path: Path) -> None:
    """`tokenizer.pretrained` goes through AutoTokenizer.from_pretrained(path, revision): here a
    local directory stands in for the hub id of config/paper.yaml."""
    from vpt.data.synth import SynthConfig, generate
    from vpt.data.tokenizer import train_bpe

    docs = generate(SynthConfig(n_docs=50, seed=0))
    train_bpe([d["problem"] for d in docs], 300, 1, tmp_path / "hub-tok")
    cfg = (workdir / "config/config.yaml").read_text().replace(
        "  train: {dataset: corpus, split: train, vocab_size: 2048, min_frequency: 2}",
        f"  pretrained: {{path: {tmp_path / 'hub-tok'}, revision: null}}",
    )
    (workdir / "config/pre.yaml").write_text(cfg)
    res = vpt("data", "tokenizer", "--config", "config/pre.yaml", cwd=workdir)
    assert res.returncode == 0, res.stderr
    from transformers import AutoTokenizer

    assert len(AutoTokenizer.from_pretrained(workdir / "data/tokenizer/bpe-embedded")) == 300
