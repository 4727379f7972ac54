"""vpt launch against a real single-node SLURM cluster (tests/slurm/cluster.sh, fixture
slurm_cluster): a training job interrupted mid-run through submitit's preemption path is
requeued under the same job id, resumes from the checkpoint written at the interrupted step,
and ends exactly where an uninterrupted inline run ends; failed and vanished jobs are errors
that name the job and show its log."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml

from vpt import launch as L
from vpt.config import load_config

from conftest import REPO

# The tiny learner of tests/test_train.py; ~100+ steps/s on one CPU core, so STEPS lasts a few
# seconds: long enough to interrupt after the first checkpoint, short enough for CI.
ARCH = {"model_type": "qwen2", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "intermediate_size": 64, "max_position_embeddings": 128, "tie_word_embeddings": True}
STEPS = 1000
CHECKPOINT_EVERY = 50
TIMING = {"seconds", "tokens_per_s"}  # per-step wall-clock fields, the only ones allowed to differ


@pytest.fixture
def one_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Training on one thread, here and in the jobs (which inherit the environment): with CI's
    2 cores shared with other work, two-thread torch processes slow each other down many times
    over. Both runs of a comparison must use the same thread count anyway."""
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@dataclass
class Tiny:
    root: Path
    configs: list[str]  # --config files, absolute
    cfg: dict

    def train_argv(self, run_dir: Path) -> list[str]:
        return ["train", "--base", *[a for c in self.configs for a in ("--config", c)], "--run-dir", str(run_dir)]

    def launch_argv(self, name: str, run_dir: Path) -> list[str]:
        return [sys.executable, "-m", "vpt", "launch", "--launcher", "slurm", "--kind", "train", "--name", name,
                *[a for c in self.configs for a in ("--config", c)], "--", *self.train_argv(run_dir)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    """Tokenizer and packed corpus where the config says, for `vpt train --base`."""
    from vpt import paths
    from vpt.data.pack import PackConfig, pack
    from vpt.data.synth import SynthConfig, generate
    from vpt.data.tokenizer import corpus_texts, load_tokenizer, train_bpe

    root = tmp_path_factory.mktemp("slurm")
    override = {
        "data_dir": str(root / "data"), "results_dir": str(root / "results"),
        "tokenizer": {"name": "tiny", "train": {"dataset": "corpus", "split": "train", "vocab_size": 400, "min_frequency": 2}},
        "pack": {"variants": ["raw"], "seq_len": 48, "shuffle_buffer": 50},
        "base_model": {"architecture": ARCH, "train": {"steps": STEPS, "lr": 3e-3, "batch_size": 4, "warmup_steps": 2,
                                                        "checkpoint_every": CHECKPOINT_EVERY, "log_every": 100}},
        # time_min 60: submitit counts a signal in the first 80% (at most limit - 10 min) of a
        # job's time as a preemption, not a time-out
        "slurm": {"folder": str(root / "jobs"), "poll_s": 0.25, "grace_s": 3, "max_requeues": 1,
                  "resources": {"default": {"gpus": 0, "cpus": 1, "mem_gb": 1, "time_min": 60, "signal_delay_s": 30}}},
    }
    (root / "override.yaml").write_text(yaml.safe_dump(override))
    configs = [str(REPO / "config" / "config.yaml"), str(root / "override.yaml")]
    cfg = load_config(configs)
    corpus = pd.DataFrame(generate(SynthConfig(n_docs=400, seed=0)))
    train_bpe(corpus_texts(corpus["problem"], corpus["solution"]), 400, 2, paths.tokenizer_dir(cfg))
    pack(corpus, load_tokenizer(paths.tokenizer_dir(cfg)), PackConfig(seq_len=48, shuffle_buffer=50, seed=0),
         paths.packed_dir(cfg, "raw"), "tiny", "synth")
    return Tiny(root, configs, cfg)


def _wait_for(predicate, timeout_s: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"vpt launch exited ({proc.returncode}) while waiting for {what}:\n{log.read_text() if log else ''}")
        if time.monotonic() > end:
            pytest.fail(f"no {what} after {timeout_s:.0f} s:\n{log.read_text()[-3000:] if log else ''}")
        time.sleep(0.1)


def _stamp(line: str) -> datetime:
    return datetime.strptime(re.search(r"\((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),", line).group(1), "%Y-%m-%d %H:%M:%S")


def _rows(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_interrupted_training_is_requeued_and_matches_an_uninterrupted_run(slurm_cluster: None, tiny: Tiny, one_thread: None) -> None:
    import submitit
    import torch
    from safetensors.torch import load_file

    run = tiny.root / "runs" / "interrupted"
    out = tiny.root / "launch.out"
    job_id = None
    with out.open("w") as f:
        proc = subprocess.Popen(tiny.launch_argv("resume", run), cwd=tiny.root, stdout=f, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(lambda: re.search(r"as slurm job (\d+)", out.read_text()) is not None, 60, "job id", proc, out)
        job_id = re.search(r"as slurm job (\d+)", out.read_text()).group(1)
        # progress past a checkpoint, then submitit's own preemption path (SIGTERM, then USR2)
        _wait_for(lambda: (run / "checkpoints" / "latest.json").exists(), 120, "first checkpoint", proc, out)
        submitit.SlurmJob(folder=tiny.root / "jobs" / "resume" / "%j", job_id=job_id)._interrupt(timeout=False)

        # meanwhile, the same run uninterrupted and inline (in this process)
        reference = tiny.root / "runs" / "reference"
        assert L.launch(tiny.train_argv(reference), tiny.cfg, "train", None, "reference", backend="inline") == 0

        assert proc.wait(timeout=240) == 0, out.read_text()[-5000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            if job_id:
                subprocess.run(["scancel", job_id], check=False)
    text = out.read_text()

    # one submission, requeued under the same id, finished
    assert len(re.findall(r"submitted resume as slurm job", text)) == 1
    assert f"Requeued job {job_id}" in text and "this job is preempted" in text
    assert f"slurm job {job_id} (resume) finished" in text
    # the child checkpointed at the interrupted step (usually not a multiple of CHECKPOINT_EVERY)
    # and the requeued run resumed from exactly that checkpoint
    stopped = re.search(r"stopped on request after step (\d+); checkpoint (\S+step_(\d+))", text)
    assert stopped, text[-5000:]
    step = int(stopped.group(1))
    assert 0 < step < STEPS and int(stopped.group(3)) == step
    assert re.search(rf"resuming from \S+step_{step:07d} \(step {step}\)", text)
    # the requeued job restarted promptly (cluster.sh: cred_expire, sched_interval), not after ~2 min
    requeued = next(line for line in text.splitlines() if f"Requeued job {job_id}" in line)
    restarted = [line for line in text.splitlines() if "Starting with JobEnvironment" in line][-1]
    assert (_stamp(restarted) - _stamp(requeued)).total_seconds() < 60

    # same final metrics and model as the uninterrupted run
    got, want = json.loads((run / "summary.json").read_text()), json.loads((reference / "summary.json").read_text())
    assert got["step"] == want["step"] == STEPS and got["data"] == want["data"]
    for key in ("final_loss", "mean_loss_last_10"):
        assert got[key] == pytest.approx(want[key], rel=1e-6, abs=1e-6)
    rows, ref_rows = _rows(run), _rows(reference)
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert len(rows) == len(ref_rows)
    for r, w in zip(rows, ref_rows):
        assert r.keys() == w.keys() and all(r[k] == pytest.approx(w[k], rel=1e-6, abs=1e-6) for k in r), (r, w)
    a, b = load_file(run / "final" / "model.safetensors"), load_file(reference / "final" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=0, atol=1e-6) for k in a)


def test_a_failing_job_reports_its_id_and_log_tail(slurm_cluster: None, tiny: Tiny) -> None:
    job = L.submit(["data", "download", "nope", "--config", tiny.configs[0]], tiny.cfg, "data", None, "fails", "slurm")
    with pytest.raises(L.LaunchError) as err:
        L.wait(job, tiny.cfg, "slurm", "fails")
    msg = str(err.value)
    assert f"slurm job {job.job_id} (fails) failed" in msg and "exited with code 2" in msg
    assert str(job.paths.stdout) in msg
    assert "no dataset 'nope' in the config" in msg  # the stage's own error, from the log's tail
    sbatch = job.paths.submission_file.read_text()  # tiny's resources as sbatch options
    for option in ("--job-name=fails", "--cpus-per-task=1", "--mem=1G", "--time=60", "--signal=USR2@30"):
        assert f"#SBATCH {option}\n" in sbatch, option
    assert "--gpus-per-node" not in sbatch and "--partition" not in sbatch  # gpus 0, cluster default partition


def test_a_two_task_job_runs_one_rank_per_task(slurm_cluster: None, tiny: Tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    """srun starts both tasks of one sbatch job; each task's `vpt env` child sees its own rank
    and the same rendezvous, and the two ranks all-reduce over gloo (the node declares nproc
    CPUs, 2 here, enough for 2 tasks of 1 CPU)."""
    import io

    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "OMP_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    cfg = copy.deepcopy(tiny.cfg)
    cfg["slurm"]["resources"]["probe"] = {"tasks_per_node": 2, "gpus": 0, "cpus": 1}
    job = L.submit(["env", "--init", "--timeout", "60"], cfg, "probe", None, "env2", "slurm")
    out = io.StringIO()
    assert L.wait(job, cfg, "slurm", "env2", out=out) == 0
    text = out.getvalue()
    ranks = {int(m.group(1)): json.loads(m.group(2)) for m in re.finditer(r"^\[task (\d)\] (\{.*\"world_size\".*\})$", text, re.M)}
    assert sorted(ranks) == [0, 1], text
    for task, env in ranks.items():
        assert (env["rank"], env["local_rank"], env["world_size"], env["local_world_size"]) == (task, task, 2, 2)
        assert env["all_reduce"] == 2 and env["omp_num_threads"] == "1" and env["torch_threads"] == 1
        assert f'"rank": {task}' in job.task(task).paths.stdout.read_text()  # srun's per-task log
    assert ranks[0]["master_addr"] == ranks[1]["master_addr"] == "localhost"  # the job's first node
    assert ranks[0]["master_port"] == ranks[1]["master_port"]
    sbatch = job.paths.submission_file.read_text()
    assert "#SBATCH --ntasks-per-node=2\n" in sbatch and "#SBATCH --nodes=1\n" in sbatch and "--cpus-per-task=1 " in sbatch
    assert f"slurm job {job.job_id} (env2) finished" in text


def test_a_two_task_training_job_equals_the_local_two_process_run(slurm_cluster: None, tiny: Tiny, one_thread: None,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`vpt train` as one SLURM job of 2 tasks (FSDP2 over gloo, one rank per task) finishes, and
    its model equals the same run as a local 2-process submitit job."""
    import io

    import torch
    from safetensors.torch import load_file

    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    cfg = copy.deepcopy(tiny.cfg)
    cfg["slurm"]["resources"]["train"] = {"tasks_per_node": 2, "gpus": 0, "cpus": 1}
    runs = {}
    for backend in ("slurm", "local"):
        run = tiny.root / "runs" / f"fsdp-{backend}"
        argv = [*tiny.train_argv(run), "--steps", "20"]
        job = L.submit(argv, cfg, "train", None, f"fsdp-{backend}", backend)
        out = io.StringIO()
        assert L.wait(job, cfg, backend, f"fsdp-{backend}", out=out) == 0, out.getvalue()[-4000:]
        runs[backend] = run
    for backend, run in runs.items():
        assert [r["step"] for r in _rows(run)] == list(range(1, 21)), backend
    a, b = (load_file(runs[k] / "final" / "model.safetensors") for k in ("slurm", "local"))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=0, atol=1e-6) for k in a)
    assert [r["loss"] for r in _rows(runs["slurm"])] == pytest.approx([r["loss"] for r in _rows(runs["local"])], rel=1e-6)


def test_paper_resources_become_sbatch_options(slurm_cluster: None) -> None:
    paper = load_config([REPO / "config" / "paper.yaml"])
    ex = L.make_executor("slurm", L.Settings.from_config(paper), L.resources_for(paper, "train", "qwen1.5-7b"), "train-7b")
    sbatch = ex._make_submission_file_text("true", "uid")
    for option in ("--partition=gpu", "--nodes=1", "--ntasks-per-node=8", "--gpus-per-node=8", "--cpus-per-task=8",
                   "--mem=384G", "--time=1440", "--signal=USR2@300", "--job-name=train-7b"):
        assert f"#SBATCH {option}\n" in sbatch, option
    data = L.make_executor("slurm", L.Settings.from_config(paper), L.resources_for(paper, "data", None), "data")
    sbatch = data._make_submission_file_text("true", "uid")
    assert "#SBATCH --partition=cpu\n" in sbatch and "--gpus-per-node" not in sbatch


def test_a_job_that_vanishes_without_a_result_is_an_error(slurm_cluster: None, tiny: Tiny) -> None:
    cfg = copy.deepcopy(tiny.cfg)
    cfg["slurm"]["resources"]["data"] = {"extra": {"begin": "now+60"}}  # still pending when cancelled
    job = L.submit(["config", "validate", "--config", tiny.configs[0]], cfg, "data", None, "vanishes", "slurm")
    subprocess.run(["scancel", str(job.job_id)], check=True)
    t0 = time.monotonic()
    with pytest.raises(L.LaunchError, match=rf"slurm job {job.job_id} \(vanishes\) ended without a result \(CANCELLED"):
        L.wait(job, cfg, "slurm", "vanishes")
    assert time.monotonic() - t0 < 30  # grace_s is 3 here
