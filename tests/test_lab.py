"""The CPU lab (vpt.lab): its splits, token kinds, config and Snakemake wiring (fast); its
statistics are vpt.stats (tests/test_stats.py)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from conftest import make_workdir, snakemake
from vpt.data.synth import SynthConfig, generate
import yaml

from vpt.config import ConfigError, deep_update
from vpt.lab.alpha import token_kind
from vpt.lab.config import LabConfig, lab_config, load_lab
from vpt.lab.data import split_frame

REPO = Path(__file__).resolve().parents[1]
LAB_YAML = REPO / "config" / "lab.yaml"


def _lab(**over: object) -> LabConfig:
    """config/lab.yaml's lab section with `over` layered on it (vpt.config.deep_update), validated."""
    lab = yaml.safe_load(LAB_YAML.read_text())["lab"]
    return lab_config(deep_update(lab, over))


def _two_methods(**over: object) -> LabConfig:
    """The lab with only ntp and vpt (their pins and trials kept)."""
    lab = yaml.safe_load(LAB_YAML.read_text())["lab"]
    keep = ("ntp", "vpt")
    lab.update(methods=list(keep), method_train={m: lab["method_train"][m] for m in keep},
               tuning={"seed": 99, "trials": {m: lab["tuning"]["trials"][m] for m in keep}})
    lab.update(over)
    return lab_config(lab)


def _small(**kw: object) -> LabConfig:
    cfg = load_lab([LAB_YAML])
    for name in ("corpus", "feedback", "validation", "test", "probe"):
        getattr(cfg, name).n = 400 if name == "corpus" else 64
    return cfg


def _numbers(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"\d+", text))


def test_heldout_splits_share_no_template_or_problem_with_training() -> None:
    cfg = _small()
    frames = {n: split_frame(cfg, n) for n in ("corpus", "feedback", "validation", "test", "probe")}
    tgt = cfg.target
    seen = set(frames["corpus"].query("family == @tgt").template) | set(frames["feedback"].template) | set(frames["probe"].template)
    assert seen <= set(cfg.train_templates) and seen  # training side: only training templates
    for name in ("validation", "test"):
        df = frames[name]
        assert set(df.family) == {tgt} and set(df.template) <= set(cfg.heldout_templates)
        train_combos = {(r.template, _numbers(r.problem)) for r in frames["corpus"].itertuples() if r.family == tgt}
        assert not {(r.template, _numbers(r.problem)) for r in df.itertuples()} & train_combos
        assert not set(df.problem) & (set(frames["corpus"].problem) | set(frames["feedback"].problem))
    assert not set(frames["validation"].problem) & set(frames["test"].problem)
    # the target is a minority of the stream, near the configured share
    assert abs((frames["corpus"].family == tgt).mean() - cfg.target_share) < 0.06


def test_templates_none_keeps_the_original_corpus() -> None:
    """The held-out-template option must not change any existing corpus."""
    a = generate(SynthConfig(50, 0))
    b = generate(SynthConfig(50, 0, templates={}))  # no family restricted: same draws
    assert a == b
    c = generate(SynthConfig(50, 0, {"percent": 1.0}, {"percent": [1, 2]}))
    assert {d["source"] for d in c} <= {"synth:percent:t1", "synth:percent:t2"}
    with pytest.raises(ValueError, match="percent"):
        generate(SynthConfig(5, 0, {"percent": 1.0}, {"percent": [7]}))


def test_token_kind_on_a_hand_built_example() -> None:
    pieces = {" 25": "number", "100": "number", " *": "operator", " =": "operator", "####": "operator", " $": "operator",
              " discount": "word", "The": "word", ".": "other", "\n": "other", " 3x": "other"}
    assert {p: token_kind(p) for p in pieces} == pieces


def test_lab_config_rejects_unknown_keys_and_bad_templates() -> None:
    with pytest.raises(ConfigError, match=r"key 'lab': .*'targett' was unexpected.*allowed keys: alpha_docs"):
        _lab(targett="percent")
    with pytest.raises(ConfigError, match=r"key 'lab.heldout_templates': \[0, 1, 2, 3\] must be a proper subset"):
        _lab(heldout_templates=[0, 1, 2, 3])
    with pytest.raises(ConfigError, match="key 'lab.eval_steps'"):  # the final comparison reads the last learner step
        _lab(eval_steps=[60, 120])
    for name in ("lab.yaml", "lab_conflict.yaml"):
        cfg = load_lab([REPO / "config" / name])
        assert cfg.eval_steps[-1] == cfg.steps and len(cfg.seeds) >= 5


def test_snakemake_dry_run_lists_the_lab_jobs(tmp_path: Path) -> None:
    work = make_workdir(tmp_path / "work")
    r = snakemake("-n", "results/lab/report.md", "--configfile", "config/lab.yaml", cwd=work, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    counts = dict(re.findall(r"^(lab_\w+)\s+(\d+)$", r.stdout, re.M))
    cfg = load_lab([work / "config" / "lab.yaml"])
    n_trials = sum(len(cfg.tuning["trials"][m]) for m in cfg.methods)
    assert counts == {"lab_data": "1", "lab_base": "1", "lab_run": str(len(cfg.methods) * len(cfg.seeds)),
                      "lab_tune": str(n_trials), "lab_tuning": "1", "lab_probe": "1", "lab_report": "1"}
    r = snakemake("-n", "results/lab/tuning/tuning.md", "--configfile", "config/lab.yaml", cwd=work, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    counts = dict(re.findall(r"^(lab_\w+)\s+(\d+)$", r.stdout, re.M))
    assert counts == {"lab_data": "1", "lab_base": "1", "lab_tune": str(n_trials), "lab_tuning": "1"}


def test_packed_rows_tokenize_like_evaluation(tmp_path: Path) -> None:
    """Evaluation re-tokenizes text with vpt.lab.run.lab_tokenizer: it must reproduce the packed
    training rows (a checkpoint's saved tokenizer copy does not: it loads as Qwen2's class)."""
    from vpt.data.pack import open_packed
    from vpt.lab.data import prepare

    cfg = _small()
    cfg.vocab_size = 300
    prepare(cfg, tmp_path / "data")
    from vpt.lab.run import lab_tokenizer

    tok = lab_tokenizer(tmp_path / "data")
    from vpt.lab import paths

    assert paths.data_summary(tmp_path / "data").exists()  # the data rule's output, written last
    ids, _, _ = open_packed(paths.packed_dir(tmp_path / "data"))
    row = ids[0][:60].astype(int).tolist()  # the stream starts at a document's "Question:"
    again = tok(tok.decode(row), add_special_tokens=False)["input_ids"]
    assert again[:50] == row[:50]


def test_token_accuracy_matches_a_brute_force_count(tmp_path: Path) -> None:
    """answer_scores' accuracy = for each problem, the share of its answer tokens whose argmax
    prediction (given the true prefix) is the label, counted one position at a time."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from vpt.data.pack import IGNORE, encode_document
    from vpt.data.tokenizer import corpus_texts, load_tokenizer, train_bpe
    from vpt.lab.evaluate import answer_scores, token_after_accuracy

    df = split_frame(_small(), "validation").iloc[:5]
    train_bpe(corpus_texts(df["problem"], df["solution"]), 300, 2, tmp_path / "tok")
    tok = load_tokenizer(tmp_path / "tok")
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                         num_key_value_heads=1, intermediate_size=64, max_position_embeddings=512)).eval()
    loss, acc = answer_scores(model, tok, df, batch_size=2)  # padded batches of unequal lengths
    for i, (p, s) in enumerate(zip(df["problem"], df["solution"])):
        ids, labels = encode_document(tok, p, s)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0]
        hits, ces = [], []
        for t in range(1, len(ids)):
            if labels[t] != IGNORE:
                hits.append(int(logits[t - 1].argmax()) == labels[t])
                ces.append(float(torch.nn.functional.cross_entropy(logits[t - 1], torch.tensor(labels[t]))))
        assert acc[i] == pytest.approx(np.mean(hits)) and loss[i] == pytest.approx(np.mean(ces), rel=1e-4)
    # the conflict's token accuracy: argmax hits at label `label` right after `prev`, counted by hand
    ids0, labels0 = encode_document(tok, df["problem"].iloc[0], df["solution"].iloc[0])
    t0 = next(t for t in range(1, len(ids0)) if labels0[t] != IGNORE and labels0[t] != ids0[t - 1]) + 2
    prev, label = tok.decode([ids0[t0 - 1]]), tok.decode([ids0[t0]])
    prev_id, label_id = ids0[t0 - 1], ids0[t0]
    hits, n, p_label, p_other = 0, 0, 0.0, 0.0
    for p, s in zip(df["problem"], df["solution"]):
        ids, labels = encode_document(tok, p, s)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0]
        for t in range(1, len(ids)):
            if labels[t] == label_id and ids[t - 1] == prev_id:
                hits, n = hits + int(int(logits[t - 1].argmax()) == label_id), n + 1
                p_label += float(logits[t - 1].softmax(-1)[label_id])
                p_other += float(logits[t - 1].softmax(-1)[prev_id])
    got = token_after_accuracy(model, tok, df, prev, label, prev, batch_size=2)
    assert n > 0 and (got["accuracy"], got["count"]) == (pytest.approx(hits / n), n)
    assert (got["p_label"], got["p_other"]) == (pytest.approx(p_label / n, rel=1e-4), pytest.approx(p_other / n, rel=1e-4))


def test_tuning_needs_equal_budgets_and_its_own_seed() -> None:
    trials = {m: [{"lr": 1e-3}, {"lr": 2e-3}] for m in ("ntp", "vpt")}
    _two_methods(tuning={"seed": 99, "trials": trials})
    with pytest.raises(ConfigError, match="same number of trials"):
        _two_methods(tuning={"seed": 99, "trials": {**trials, "vpt": [{"lr": 1e-3}]}})
    with pytest.raises(ConfigError, match="missing"):
        _two_methods(tuning={"seed": 99, "trials": {"ntp": trials["ntp"]}})
    with pytest.raises(ConfigError, match="key 'lab.tuning.seed'"):
        _two_methods(seeds=[0, 99], tuning={"seed": 99, "trials": trials})
    with pytest.raises(ConfigError, match="key 'lab.tuning': 'seed' is a dependency of 'trials'"):
        _two_methods(tuning={"trials": trials})
    with pytest.raises(ConfigError, match="key 'lab.primary_metric': 'perplexity' is not allowed; choose one of: token_accuracy"):
        _lab(primary_metric="perplexity")
    with pytest.raises(ConfigError, match="key 'lab.method_train'"):
        _two_methods(methods=["ntp"], tuning={})


def test_train_config_layers_train_method_train_and_trial() -> None:
    from vpt.lab.run import train_config

    cfg = load_lab([LAB_YAML])
    cfg.method_train = {"vpt": {"lr": 7e-4, "value": {"kind": "cosine"}}}
    t = train_config(cfg, "vpt", 3)
    assert (t.lr, t.value.kind, t.value.meta_every, t.seed) == (7e-4, "cosine", cfg.train["value"]["meta_every"], 3)
    assert train_config(cfg, "ntp", 3).lr == cfg.train["lr"]  # another method keeps lab.train
    assert train_config(cfg, "vpt", 3, {"lr": 5e-3}).lr == 5e-3  # a trial wins over both


def test_pinned_method_train_is_what_the_config_tuning_can_choose() -> None:
    """Every pinned value must be one of that method's trials (a pin from outside the grid would
    be tuning without a record)."""
    cfg = load_lab([LAB_YAML])
    for m, pinned in cfg.method_train.items():
        assert pinned in cfg.tuning["trials"][m], (m, pinned)


def test_tuning_summary_picks_the_best_trial_per_method_and_checks_the_pins(tmp_path: Path) -> None:
    import json

    from vpt.lab.paths import trial_dir
    from vpt.lab.tune import summarize

    trials = {"ntp": [{"lr": 1e-3}, {"lr": 2e-3}], "vpt": [{"lr": 1e-3}, {"lr": 2e-3}]}
    scores = {"ntp": [0.30, 0.33], "vpt": [0.32, 0.31]}
    for higher, metric in ((True, "token_accuracy"), (False, "answer_loss")):
        cfg = _two_methods(primary_metric=metric, tuning={"seed": 99, "trials": trials},
                           method_train={"ntp": {"lr": 2e-3}, "vpt": {"lr": 2e-3}})
        for m, vals in scores.items():
            for i, v in enumerate(vals):
                d = trial_dir(tmp_path, m, i)
                d.mkdir(parents=True, exist_ok=True)
                (d / "result.json").write_text(json.dumps({"trial": i, "overrides": trials[m][i], "value": v,
                                                           "metrics": {"answer_loss": 5.0, "token_accuracy": 0.3 + i}}))
        res = summarize(cfg, tmp_path)["methods"]
        if higher:
            assert (res["ntp"]["best"], res["vpt"]["best"]) == (1, 0)
            assert res["ntp"]["pinned_is_best"] and not res["vpt"]["pinned_is_best"]
        else:  # lower is better: the other trial wins
            assert (res["ntp"]["best"], res["vpt"]["best"]) == (0, 1)
        assert "vpt NO" in (tmp_path / "tuning" / "tuning.md").read_text() or not higher
    scores["vpt"] = [0.0, 0.0]  # a tie on the primary metric: the better token accuracy wins
    cfg = _two_methods(primary_metric="token_accuracy", tuning={"seed": 99, "trials": trials})
    d = trial_dir(tmp_path, "vpt", 0)
    (d / "result.json").write_text(json.dumps({"trial": 0, "overrides": trials["vpt"][0], "value": 0.0, "metrics": {"answer_loss": 5.0, "token_accuracy": 0.3}}))
    d = trial_dir(tmp_path, "vpt", 1)
    (d / "result.json").write_text(json.dumps({"trial": 1, "overrides": trials["vpt"][1], "value": 0.0, "metrics": {"answer_loss": 5.0, "token_accuracy": 0.4}}))
    assert summarize(cfg, tmp_path)["methods"]["vpt"]["best"] == 1


def test_conflict_rewrites_a_seeded_share_of_the_target_corpus_only() -> None:
    from vpt.lab.run import conflict_tokens

    cfg = load_lab([REPO / "config" / "lab_conflict.yaml"])
    cfg.corpus.n = 1500
    c = cfg.conflict
    clean_cfg = load_lab([LAB_YAML])
    clean_cfg.corpus.n = 1500
    corpus, clean = split_frame(cfg, "corpus"), split_frame(clean_cfg, "corpus")
    assert (corpus.problem == clean.problem).all()  # same documents, only some solutions rewritten
    changed = corpus.solution != clean.solution
    assert (changed == corpus.conflict).all() and set(corpus[changed].family) == {cfg.target}
    eligible = (clean.family == cfg.target) & clean.solution.str.contains(c["find"], regex=False)
    assert changed.sum() == round(c["share"] * eligible.sum())
    back = corpus[changed].solution.str.replace(c["replace"], c["find"], regex=False)
    assert (back == clean[changed].solution).all()
    for name in ("feedback", "validation", "test", "probe"):  # every other split is clean
        assert not split_frame(cfg, name).solution.str.contains(c["replace"], regex=False).any()
    assert conflict_tokens(cfg) == (" /", " 100", " 10")
    with pytest.raises(ConfigError, match="key 'lab.conflict': find and replace are both 'a'"):
        _lab(conflict={"share": 0.5, "find": "a", "replace": "a", "seed": 0})
    with pytest.raises(ConfigError, match="key 'lab.conflict': 'find' is a dependency of 'share'"):
        _lab(conflict={"share": 0.5})
    with pytest.raises(ConfigError, match="needs a lab.conflict"):
        _lab(primary_metric="conflict_token_accuracy")


def test_value_signal_matches_autograd_directional_derivatives(tmp_path: Path) -> None:
    """vpt.lab.signal's dV/dalpha (central difference) against D_t(v) = u^T grad log p_t(v) by autograd."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from vpt.data.pack import encode_document
    from vpt.data.tokenizer import corpus_texts, load_tokenizer, train_bpe
    from vpt.lab.signal import alpha_gradient_table
    from vpt.value.flat import norm
    from vpt.value.scope import scope_parameters

    df = split_frame(_small(), "validation").iloc[:2]
    train_bpe(corpus_texts(df["problem"], df["solution"]), 300, 2, tmp_path / "tok")
    tok = load_tokenizer(tmp_path / "tok")
    torch.manual_seed(0)
    # GPT-2 computes in the dtype it is given (Qwen2's norms upcast to float32), so float64 is exact here
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, n_positions=512, resid_pdrop=0,
                                       embd_pdrop=0, attn_pdrop=0, bos_token_id=0, eos_token_id=0)).double().eval()
    params = [p for _, p in scope_parameters(model, "last:1")]
    g = [torch.randn_like(p) for p in params]
    K = 4
    table = alpha_gradient_table(model, params, g, tok, df, K, eps=1e-4)
    u = [x / norm(g) for x in g]
    ids, labels = encode_document(tok, df["problem"].iloc[0], df["solution"].iloc[0])
    x = torch.tensor([ids])
    logits = model(input_ids=x).logits[0]  # (T, V)
    positions = [t for t in range(len(ids) - 1) if labels[t + 1] != -100][:5]
    rows = table.iloc[:5]
    for t, (_, row) in zip(positions, rows.iterrows()):
        cand = logits[t].detach().topk(K).indices.tolist()

        def D(v: int) -> float:
            grads = torch.autograd.grad(model(input_ids=x).logits[0, t].log_softmax(-1)[v], params)
            return sum(float((a * b).sum()) for a, b in zip(grads, u))

        want = D(labels[t + 1]) - sum(D(c) for c in cand) / K
        assert row.label_id == labels[t + 1] and row.prev_id == ids[t]
        assert row.dV_dalpha == pytest.approx(want, rel=1e-6, abs=1e-9)


# --------------------------------------------------------------------------- preset, CLI, rules


def test_lab_schema_agrees_with_the_code() -> None:
    """The schema's key list and enums are the ones the lab reads."""
    import dataclasses

    from vpt.config import load_schema
    from vpt.data.synth import FAMILIES
    from vpt.lab.config import PRIMARY_METRICS
    from vpt.train.config import METHODS

    schema = load_schema("lab")
    lab = schema["properties"]["lab"]["properties"]
    assert set(lab) == {f.name for f in dataclasses.fields(LabConfig)}
    assert schema["$defs"]["method"]["enum"] == list(METHODS)
    assert lab["primary_metric"]["enum"] == list(PRIMARY_METRICS)
    assert lab["target"]["enum"] == list(FAMILIES)


def test_schema_fills_lab_defaults_but_never_into_train_overrides() -> None:
    """Defaults come from lab.schema.yaml; the train-key sections are layered over one another, so
    none of the main schema's train defaults may be filled into them."""
    lab = yaml.safe_load(LAB_YAML.read_text())["lab"]
    minimal = {k: lab[k] for k in ("architecture", "base", "train", "eval_steps")}
    minimal["method_train"] = {"vpt": {"lr": 2e-3}}
    cfg = lab_config(minimal)
    assert (cfg.out_dir, cfg.target, cfg.corpus.n, cfg.seeds, cfg.conflict, cfg.bootstrap) == ("results/lab", "percent", 6000, [0, 1, 2, 3, 4], {}, 2000)
    assert cfg.probe_runs == {"probes": 64, "etas": [1e-3, 1e-2, 1e-1], "batch_size": 8, "method": "vpt", "seed": 0}
    assert cfg.method_train == {"vpt": {"lr": 2e-3}} and cfg.train == lab["train"] and cfg.base == lab["base"]
    with pytest.raises(ConfigError, match=r"key 'lab.method_train.vpt': .*'lrr' was unexpected.*allowed keys: .*batch_size"):
        _lab(method_train={"vpt": {"lrr": 1e-3}})
    with pytest.raises(ConfigError, match=r"key 'lab.tuning.trials.ntp.0.value.kind': 'sine' is not allowed; choose one of: dot, cosine"):
        _lab(tuning={"trials": {"ntp": [{"value": {"kind": "sine"}}]}})
    with pytest.raises(ConfigError, match=r"key 'lab.train': 'steps' is a required property"):
        lab_config({**minimal, "train": {"lr": 1e-3}})


def test_lab_files_layer_like_every_config_and_errors_name_the_file(tmp_path: Path) -> None:
    over = tmp_path / "pilot.yaml"
    over.write_text(yaml.safe_dump({"lab": {"out_dir": str(tmp_path / "out"), "train": {"steps": 8}, "eval_steps": [4, 8]}}))
    cfg = load_lab([LAB_YAML, over])
    base = load_lab([LAB_YAML])
    assert (cfg.out_dir, cfg.steps, cfg.train["lr"], cfg.train["value"]) == (str(tmp_path / "out"), 8, base.train["lr"], base.train["value"])
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"lab": {"seeds": [0]}}))
    with pytest.raises(ConfigError, match=r"invalid configuration in .*lab.yaml, .*bad.yaml:\n  - key 'lab.seeds': \[0\] is too short"):
        load_lab([LAB_YAML, bad])
    with pytest.raises(ConfigError, match="no `lab:` section"):
        load_lab([REPO / "config" / "config.yaml"])
    from vpt.config import load_config

    with pytest.raises(ConfigError, match="a lab preset .* `vpt lab <stage>`"):
        load_config([LAB_YAML])  # the pipeline's stages refuse a lab preset


def test_vpt_lab_command_reads_layered_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`vpt lab tuning` on hand-written trial results, with an -c file moving out_dir."""
    import json

    from vpt.cli import main
    from vpt.lab import paths

    out = tmp_path / "out"
    over = tmp_path / "pilot.yaml"
    over.write_text(yaml.safe_dump({"lab": {"out_dir": str(out)}}))
    cfg = load_lab([LAB_YAML, over])
    for m in cfg.methods:
        for i, t in enumerate(cfg.tuning["trials"][m]):
            path = paths.trial_result(out, m, i)
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps({"trial": i, "overrides": t, "value": 0.1 * i, "metrics": {"answer_loss": 1.0}}))
    assert main(["lab", "tuning", "-c", str(LAB_YAML), "-c", str(over)]) == 0
    assert "| ntp | 3 |" in paths.tuning_md(out).read_text()
    assert main(["lab", "tuning", "-c", str(over)]) == 2  # alone, the pilot file lacks required keys
    assert "key 'lab': 'architecture' is a required property" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["lab", "run", "--method", "vpt"])  # a run needs its seed


def test_rule_stamps_hold_exactly_what_each_stage_reads() -> None:
    from vpt.config import validate_config
    from vpt.lab import targets as T

    cfg = validate_config({"name": "lab", "lab": yaml.safe_load(LAB_YAML.read_text())["lab"]}, kind="lab")
    stages = {"data": T.data_settings, "base": T.base_settings, "run": T.run_settings, "probe": T.probe_settings,
              "report": T.report_settings, "tuning": T.tuning_settings, "trial0": lambda c: T.trial_settings(c, "vpt", 0),
              "trial1": lambda c: T.trial_settings(c, "vpt", 1)}

    def changed(edit: dict) -> set[str]:
        new = deep_update(yaml.safe_load(yaml.safe_dump(cfg)), edit)
        return {s for s, f in stages.items() if f(new) != f(cfg)}

    assert "conflict" not in T.data_settings(cfg)  # only when set: configs without one keep their stamps
    assert changed({"lab": {"corpus": {"n": 10}}}) == set(stages)
    assert changed({"lab": {"base": {"lr": 1e-2}}}) == set(stages) - {"data"}
    assert changed({"lab": {"train": {"lr": 5e-3}}}) == {"run", "probe", "report", "tuning", "trial0", "trial1"}
    assert changed({"lab": {"method_train": {"vpt": {"lr": 5e-3}}}}) == {"run", "probe", "report", "tuning"}
    trials = cfg["lab"]["tuning"]["trials"]
    assert changed({"lab": {"tuning": {"trials": {**trials, "vpt": [trials["vpt"][0], {"lr": 9e-3}, *trials["vpt"][2:]]}}}}) == {"tuning", "trial1"}
    assert changed({"lab": {"probe_runs": {"probes": 8}}}) == {"probe"}
    assert changed({"lab": {"bootstrap": 10}}) == {"report"}
    with pytest.raises(ValueError, match="no trial 4"):
        T.trial_settings(cfg, "vpt", 4)


def test_rule_targets_are_the_paths_the_stages_write() -> None:
    from vpt.config import validate_config
    from vpt.lab import paths
    from vpt.lab import targets as T

    cfg = validate_config({"name": "lab", "lab": yaml.safe_load(LAB_YAML.read_text())["lab"]}, kind="lab")
    lab, out = cfg["lab"], Path(cfg["lab"]["out_dir"])
    ins = T.report_inputs(cfg)
    assert len(ins) == len(lab["methods"]) * len(lab["seeds"]) + 2
    assert str(paths.run_evals(out, "self_distill", 4)) in ins and str(paths.probe_result(out)) in ins
    assert T.run_outputs(cfg, "{method}", "{seed}") == f"{out}/runs/{{method}}_s{{seed}}/evals.json"
    assert T.probe_inputs(cfg) == [str(paths.run_evals(out, "vpt", 0))]
    assert T.tuning_inputs(cfg) == [str(paths.trial_result(out, m, i)) for m in lab["methods"] for i in range(4)]
    assert T.data_output(cfg) == str(paths.data_summary(paths.data_dir(out)))
