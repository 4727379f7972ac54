"""vpt launch without a cluster: resources, the inline and local backends, error messages, the
trainer's stop at a step boundary, and the job's requeue when only its stage got the signal."""

from __future__ import annotations

import copy
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from vpt import launch as L
from vpt import preempt
from vpt.cli import build_parser, main
from vpt.config import ConfigError, load_config, validate_config

from conftest import REPO
from test_slurm import STEPS, Tiny, one_thread, tiny  # noqa: F401  (the tiny `vpt train --base` setup)
from test_train import make, params, world  # noqa: F401  (the tiny Trainer setup)

EMBEDDED = REPO / "config" / "config.yaml"


@pytest.fixture
def cfg(tmp_path: Path) -> dict:
    c = load_config([EMBEDDED])
    c["slurm"].update(folder=str(tmp_path / "jobs"), poll_s=0.1, grace_s=5)
    c["slurm"]["resources"] = {
        "default": {"partition": None, "gpus": 0, "cpus": 1, "mem_gb": 2, "time_min": 30, "signal_delay_s": 60,
                    "extra": {"account": "lab"}},
        "train": {"gpus": 1, "cpus": 4, "extra": {"qos": "normal"}},
        "train/big": {"mem_gb": 128, "extra": {"qos": "high"}},
    }
    return c


# --------------------------------------------------------------------------- resources


def test_resources_merge_default_then_kind_then_model(cfg: dict) -> None:
    assert L.resources_for(cfg, "eval", None) == L.Resources(None, 0, 1, 2, 30, 60, {"account": "lab"})
    assert L.resources_for(cfg, "train", "-") == L.Resources(None, 1, 4, 2, 30, 60, {"account": "lab", "qos": "normal"})
    assert L.resources_for(cfg, "train", "small") == L.resources_for(cfg, "train", None)  # no train/small entry
    big = L.resources_for(cfg, "train", "big")
    assert (big.gpus, big.cpus, big.mem_gb, big.extra) == (1, 4, 128, {"account": "lab", "qos": "high"})


def test_paper_preset_sizes_jobs_per_model() -> None:
    paper = load_config([REPO / "config" / "paper.yaml"])
    assert paper["launcher"] == "inline"
    data = L.resources_for(paper, "data", None)
    assert (data.partition, data.gpus) == ("cpu", 0)
    small, large = L.resources_for(paper, "train", "qwen1.5-0.5b"), L.resources_for(paper, "train", "qwen1.5-7b")
    assert small.partition == large.partition == "gpu" and small.gpus == large.gpus == 1
    assert small.mem_gb < large.mem_gb and small.time_min < large.time_min
    assert L.resources_for(paper, "eval", "qwen1.5-7b").time_min > L.resources_for(paper, "eval", "qwen1.5-0.5b").time_min


def test_unknown_resource_keys_and_kinds_are_errors(cfg: dict) -> None:
    bad = copy.deepcopy(cfg)
    bad["slurm"]["resources"]["train/big"]["gpu"] = 2
    with pytest.raises(L.LaunchError, match=r"key 'slurm.resources.train/big': unknown resource 'gpu'; valid keys: partition, gpus, cpus"):
        L.resources_for(bad, "train", "big")
    with pytest.raises(ConfigError, match=r"key 'slurm.resources.train/big'.*'gpu' was unexpected.*allowed keys: cpus, extra, gpus"):
        validate_config(bad, source="x.yaml")
    bad = copy.deepcopy(cfg)
    bad["slurm"]["resources"]["trian"] = {"gpus": 2}
    with pytest.raises(ConfigError, match=r"key 'slurm.resources': 'trian'.*default, data, train, eval, probe, bench or <kind>/<model>"):
        validate_config(bad, source="x.yaml")
    with pytest.raises(L.LaunchError, match="--kind 'training' is not a job kind; choose one of: data, train, eval, probe, bench"):
        L.resources_for(cfg, "training", None)


def test_launcher_defaults_to_inline_and_is_checked(cfg: dict) -> None:
    embedded = load_config([EMBEDDED])
    assert embedded["launcher"] == "inline" and embedded["slurm"]["resources"]["default"]["gpus"] == 0
    bad = copy.deepcopy(embedded)
    bad["launcher"] = "pbs"
    with pytest.raises(ConfigError, match="key 'launcher': 'pbs' is not allowed; choose one of: inline, local, slurm"):
        validate_config(bad)
    with pytest.raises(L.LaunchError, match="nothing to launch"):
        L.launch([], cfg, "data", None, "empty")


# --------------------------------------------------------------------------- backends


def test_inline_runs_in_this_process_and_returns_the_exit_code(cfg: dict, capsys: pytest.CaptureFixture[str]) -> None:
    assert L.launch(["config", "validate", "--config", str(EMBEDDED)], cfg, "data", None, "ok") == 0
    assert "is valid (preset 'embedded')" in capsys.readouterr().out  # sys.stdout of this process: no subprocess
    assert L.launch(["data", "download", "nope", "--config", str(EMBEDDED)], cfg, "data", None, "bad") == 2
    assert "no dataset 'nope'" in capsys.readouterr().err
    # through the CLI, with `--` separating the launched command's own --config
    assert main(["launch", "--kind", "data", "--config", str(EMBEDDED), "--", "data", "download", "nope", "--config", str(EMBEDDED)]) == 2


def test_local_backend_streams_the_job_output(cfg: dict, capsys: pytest.CaptureFixture[str]) -> None:
    assert L.launch(["config", "validate", "--config", str(EMBEDDED)], cfg, "data", None, "check config", backend="local") == 0
    out = capsys.readouterr().out
    job_id = int(out.split("as local job ")[1].split()[0])
    assert f"log: {cfg['slurm']['folder']}/check_config/{job_id}/{job_id}_0_log.out" in out
    assert "is valid (preset 'embedded')" in out  # streamed from the job's log
    assert f"local job {job_id} (check config) finished" in out


def test_a_failing_local_job_names_the_job_and_shows_the_log_tail(cfg: dict) -> None:
    with pytest.raises(L.LaunchError) as err:
        L.launch(["data", "download", "nope", "--config", str(EMBEDDED)], cfg, "data", None, "dl", backend="local")
    msg = str(err.value)
    job_id = msg.split("local job ")[1].split()[0]
    assert msg.startswith(f"local job {job_id} (dl) failed: vpt.launch.JobFailed: `vpt data download nope")
    assert "exited with code 2" in msg and f"/dl/{job_id}/{job_id}_0_log.out" in msg
    assert "| vpt: error: no dataset 'nope' in the config" in msg  # the stage's own message, from the tail
    assert "Traceback" not in msg  # submitit's traceback of the failure is cut from the tail


def test_launch_help_explains_the_backends(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["launch", "--help"])
    out = capsys.readouterr().out
    for word in ("inline", "local", "slurm", "--kind", "slurm.resources", "requeued", "checkpoint", "--"):
        assert word in out, word


# --------------------------------------------------------------------------- preemption


def test_a_stop_signal_checkpoints_at_that_step_and_the_resume_is_exact(world: dict, one_thread: None) -> None:  # noqa: F811
    straight = make(world, "stop-straight", "vpt", steps=12, checkpoint_every=5)
    straight.run()
    first = make(world, "stop-split", "vpt", steps=12, checkpoint_every=5)
    step = first.train_step

    def step_then_signal() -> dict:
        row = step()
        if first.step == 7:  # not a checkpoint step
            os.kill(os.getpid(), signal.SIGUSR2)
        return row

    first.train_step = step_then_signal  # type: ignore[method-assign]
    with preempt.stop_signals(), pytest.raises(preempt.Preempted, match="after step 7; checkpoint .*step_0000007"):
        first.run()
    assert json.loads((first.run_dir / "checkpoints/latest.json").read_text())["checkpoint"] == "step_0000007"
    assert signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL and not preempt.requested()  # restored

    second = make(world, "stop-split", "vpt", steps=12, checkpoint_every=5)  # the requeued run
    assert second.step == 7
    second.run()
    assert [(r["loss"], r.get("value")) for r in second.metrics.rows] == [(r["loss"], r.get("value")) for r in straight.metrics.rows]
    assert all(torch.equal(p, q) for p, q in zip(params(straight), params(second)))


def test_the_job_requeues_itself_when_only_its_stage_was_signalled(tiny: Tiny, one_thread: None) -> None:  # noqa: F811
    """The race of VptJob: the stage exits with EXIT_PREEMPTED before submitit's handler ran in
    the job process. The job must still go through submitit's checkpoint-and-requeue path."""
    import submitit

    run = tiny.root / "runs" / "race"
    job = L.VptJob(tiny.train_argv(run), stop_timeout_s=30)
    requeues: list[submitit.helpers.DelayedSubmission] = []

    class Requeued(Exception):
        pass

    def submitit_like_handler(signum: int, frame: object) -> None:  # what submitit's handler does, minus scontrol
        requeues.append(job.checkpoint())
        raise Requeued

    def signal_only_the_stage() -> None:
        end = time.monotonic() + 120
        while not (run / "checkpoints" / "latest.json").exists() and time.monotonic() < end:
            time.sleep(0.05)
        child = L._CHILD
        if child is not None:
            os.kill(child.pid, signal.SIGTERM)

    previous = signal.signal(signal.SIGUSR2, submitit_like_handler)
    try:
        threading.Thread(target=signal_only_the_stage, daemon=True).start()
        with pytest.raises(Requeued):
            job()
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert len(requeues) == 1 and requeues[0].function.argv == job.argv  # resubmitted with the same command
    state = json.loads((run / "checkpoints" / json.loads((run / "checkpoints/latest.json").read_text())["checkpoint"] / "state.json").read_text())
    assert 0 < state["step"] < STEPS  # the stage checkpointed mid-run before exiting
    assert L._CHILD is None


def test_every_kind_the_rules_launch_is_accepted_by_the_command() -> None:
    import re

    from vpt.cli import build_parser

    kinds = {k for smk in (REPO / "workflow/rules").glob("*.smk") for k in re.findall(r"--kind (\w+)", smk.read_text())}
    assert {"data", "train", "eval", "probe", "bench"} <= kinds
    for kind in kinds:
        args = build_parser().parse_args(["launch", "--kind", kind, "--", "report", "table1"])
        assert args.kind == kind and kind in L.KINDS
