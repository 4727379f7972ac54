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
from vpt.launch.job import task_env
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
    base = dict(partition=None, cpus=1, mem_gb=2, time_min=30, signal_delay_s=60, nodes=1, tasks_per_node=1)
    assert L.resources_for(cfg, "eval", None) == L.Resources(**base, gpus=0, extra={"account": "lab"})
    assert L.resources_for(cfg, "train", "-") == L.Resources(**{**base, "cpus": 4}, gpus=1, extra={"account": "lab", "qos": "normal"})
    assert L.resources_for(cfg, "train", "small") == L.resources_for(cfg, "train", None)  # no train/small entry
    big = L.resources_for(cfg, "train", "big")
    assert (big.gpus, big.cpus, big.mem_gb, big.extra) == (1, 4, 128, {"account": "lab", "qos": "high"})


def test_nodes_and_tasks_per_node_merge_and_default_to_one(cfg: dict) -> None:
    del cfg["slurm"]["resources"]["default"]  # the schema's defaults, as section_defaults gives them
    assert (L.resources_for(cfg, "eval", None).nodes, L.resources_for(cfg, "eval", None).tasks_per_node) == (1, 1)
    cfg["slurm"]["resources"].update({"default": {"gpus": 0, "nodes": 2}, "train": {"gpus": 4, "tasks_per_node": 4},
                                      "train/big": {"nodes": 3}})
    validate_config(cfg, source="x.yaml")
    big = L.resources_for(cfg, "train", "big")
    assert (big.nodes, big.tasks_per_node, big.gpus, big.num_tasks) == (3, 4, 4, 12)
    probe = L.resources_for(cfg, "probe", None)
    assert (probe.nodes, probe.tasks_per_node, probe.num_tasks) == (2, 1, 2)
    cfg["slurm"]["resources"]["eval"] = {"tasks_per_node": 3}  # a CPU job may run several tasks per node
    assert L.resources_for(cfg, "eval", None).num_tasks == 6


def test_several_tasks_need_one_task_per_gpu(cfg: dict) -> None:
    cfg["slurm"]["resources"]["train/big"]["tasks_per_node"] = 2  # with train's gpus 1
    with pytest.raises(L.LaunchError, match=r"key 'slurm.resources.train/big': tasks_per_node 2 with gpus 1; "
                                            r"a distributed job runs one task per GPU: set tasks_per_node to 1"):
        L.resources_for(cfg, "train", "big")
    cfg["slurm"]["resources"]["train/big"]["gpus"] = 2
    assert L.resources_for(cfg, "train", "big").num_tasks == 2
    cfg["slurm"]["resources"]["train"]["tasks_per_node"] = 4  # named: the entry that set the clash, not train/big
    with pytest.raises(L.LaunchError, match=r"key 'slurm.resources.train': tasks_per_node 4 with gpus 1"):
        L.resources_for(cfg, "train", None)
    for bad in ({"nodes": 0}, {"tasks_per_node": 0}, {"tasks_per_node": 1.5}):
        wrong = copy.deepcopy(cfg)
        wrong["slurm"]["resources"]["eval"] = bad
        with pytest.raises(ConfigError, match=rf"key 'slurm.resources.eval.{next(iter(bad))}'"):
            validate_config(wrong, source="x.yaml")


def test_backends_refuse_what_they_cannot_run(cfg: dict) -> None:
    cfg["slurm"]["resources"]["probe"] = {"tasks_per_node": 2}
    with pytest.raises(L.LaunchError, match=r"a probe job has 2 tasks \(slurm.resources nodes 1 x tasks_per_node 2\) "
                                            r"and the inline launcher runs one process: use launcher local or slurm"):
        L.launch(["env"], cfg, "probe", None, "inline-2")
    cfg["slurm"]["resources"]["probe"] = {"nodes": 2}
    with pytest.raises(L.LaunchError, match=r"job 'two-nodes' asks for 2 nodes .*the local launcher runs on this machine only: use launcher slurm"):
        L.launch(["env"], cfg, "probe", None, "two-nodes", backend="local")
    assert not (Path(cfg["slurm"]["folder"]) / "two-nodes").exists()  # refused before anything was written


def test_distributed_resources_become_executor_parameters(cfg: dict) -> None:
    cfg["slurm"]["resources"]["train/big"].update(nodes=2, tasks_per_node=4, gpus=4, cpus=8)
    settings, res = L.Settings.from_config(cfg), L.resources_for(cfg, "train", "big")
    sbatch = L.make_executor("slurm", settings, res, "big")._make_submission_file_text("true", "uid")
    for option in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--cpus-per-task=8", "--mem=128G"):
        assert f"#SBATCH {option}\n" in sbatch, option
    assert "srun --unbuffered --output" in sbatch and "--cpus-per-task=8 true" in sbatch  # srun passes the CPUs on
    one = L.make_executor("slurm", settings, L.resources_for(cfg, "train", None), "one")._make_submission_file_text("true", "uid")
    assert "#SBATCH --nodes=1\n" in one and "#SBATCH --ntasks-per-node=1\n" in one and "--cpus-per-task=4 true" not in one
    cfg["slurm"]["resources"]["train/big"]["nodes"] = 1
    local = L.make_executor("local", settings, L.resources_for(cfg, "train", "big"), "big")
    assert (local.parameters["tasks_per_node"], local.parameters["gpus_per_node"], local._num_tasks()) == (4, 4, 4)


def test_paper_preset_sizes_jobs_per_model() -> None:
    paper = load_config([REPO / "config" / "paper.yaml"])
    assert paper["launcher"] == "inline"
    data = L.resources_for(paper, "data", None)
    assert (data.partition, data.gpus) == ("cpu", 0)
    small, large = L.resources_for(paper, "train", "qwen1.5-0.5b"), L.resources_for(paper, "train", "qwen1.5-7b")
    assert small.partition == large.partition == "gpu" and small.gpus == small.num_tasks == 1
    assert small.mem_gb < large.mem_gb and small.time_min < large.time_min
    # FSDP2 over one task per GPU on one node: 4B on 4 GPUs, 7B on 8
    mid = L.resources_for(paper, "train", "qwen1.5-4b")
    assert (mid.nodes, mid.gpus, mid.tasks_per_node, large.nodes, large.gpus, large.tasks_per_node) == (1, 4, 4, 1, 8, 8)
    assert L.resources_for(paper, "eval", "qwen1.5-7b").num_tasks == 1
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


def test_the_entry_point_exits_fast_only_as_its_own_process() -> None:
    """`python -m vpt` skips the interpreter's teardown (vpt/__main__.py) but keeps its exit code
    and flushed output; under runpy in another process (the inline backend above, this test) it
    raises SystemExit instead of ending that process."""
    import runpy
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "vpt", "data", "download", "nope", "--config", str(EMBEDDED)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "no dataset 'nope'" in res.stderr
    saved = sys.argv
    sys.argv = ["vpt", "config", "validate", "--config", str(EMBEDDED)]
    try:
        with pytest.raises(SystemExit) as e:
            runpy.run_module("vpt", run_name="__main__")
    finally:
        sys.argv = saved
    assert e.value.code == 0  # and this process is still here to see it


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


def _ranks(text: str) -> dict[int, dict]:
    """The `vpt env` JSON lines of a streamed multi-task log, by the task that printed them."""
    lines = [line.split("] ", 1) for line in text.splitlines() if line.startswith("[task ") and '"world_size"' in line]
    return {int(task.removeprefix("[task ")): json.loads(body) for task, body in lines}


def test_a_local_two_task_job_runs_one_rank_per_task(cfg: dict, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # the job sets it to the task's cpus (1)
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    cfg["slurm"]["resources"]["probe"] = {"tasks_per_node": 2}  # gpus 0, cpus 1 (the fixture's default)
    assert L.launch(["env", "--init", "--timeout", "60"], cfg, "probe", None, "env", backend="local") == 0
    out = capsys.readouterr().out
    job_id = int(out.split("as local job ")[1].split()[0])
    folder = Path(cfg["slurm"]["folder"]) / "env" / str(job_id)
    assert f"logs: {folder}/{job_id}_0_log.out to {job_id}_1_log.out" in out
    ranks = _ranks(out)  # streamed from both tasks' logs, each line marked with its task
    assert sorted(ranks) == [0, 1], out
    for task, env in ranks.items():
        assert (env["rank"], env["local_rank"], env["world_size"], env["local_world_size"]) == (task, task, 2, 2)
        assert (env["omp_num_threads"], env["torch_threads"], env["cuda_visible_devices"]) == ("1", 1, "")
        assert env["all_reduce"] == 2 and env["backend"] == "gloo"  # the two ranks met at MASTER_ADDR:MASTER_PORT
        assert f'"rank": {task}' in (folder / f"{job_id}_{task}_log.out").read_text()  # one log per task
    assert ranks[0]["master_addr"] == ranks[1]["master_addr"] and ranks[0]["master_port"] == ranks[1]["master_port"]
    assert ranks[0]["pid"] != ranks[1]["pid"]
    assert f"local job {job_id} (env) finished" in out


def test_one_failing_task_fails_the_job_at_once_and_cancels_the_rest(cfg: dict) -> None:
    """Rank 1 fails at once while rank 0 would run for minutes (as a rank waiting on a dead peer
    in a collective does): the client reports rank 1's failure and cancels the job."""
    def rank_one_fails() -> int:  # nested: cloudpickle ships it by value
        import os
        import time

        if os.environ["SUBMITIT_LOCAL_GLOBALID"] == "1":
            print("rank 1 starting", flush=True)
            raise RuntimeError("rank 1 gives up")
        time.sleep(300)
        return 0

    cfg["slurm"]["resources"]["probe"] = {"tasks_per_node": 2}
    res = L.resources_for(cfg, "probe", None)
    job = L.make_executor("local", L.Settings.from_config(cfg), res, "one-fails").submit(rank_one_fails)
    t0 = time.monotonic()
    with pytest.raises(L.LaunchError) as err:
        L.wait(job, cfg, "local", "one-fails")
    msg = str(err.value)
    assert msg.startswith(f"local job {job.job_id} (one-fails) failed (task 1 of 2): RuntimeError: rank 1 gives up"), msg
    assert f"log: {job.task(1).paths.stdout}" in msg and "| rank 1 starting" in msg  # the failed task's own log
    end = time.monotonic() + 30
    while job.state == "RUNNING" and time.monotonic() < end:  # cancelled: rank 0 does not sleep on
        time.sleep(0.2)
    assert job.state != "RUNNING" and time.monotonic() - t0 < 60
    assert not job.task(0).paths.result_pickle.exists()


def test_a_rank_above_zero_stops_its_stage_on_the_requeue_signal(monkeypatch: pytest.MonkeyPatch) -> None:
    """submitit's handler requeues on rank 0 only; on rank 1 of a (local) submitit job VptJob
    stops its child itself and ends the task cleanly, then restores the handler."""
    env = dict(SUBMITIT_EXECUTOR="local", SUBMITIT_LOCAL_NTASKS="2", SUBMITIT_LOCAL_JOB_NUM_NODES="1", SUBMITIT_LOCAL_NODEID="0",
               SUBMITIT_LOCAL_GLOBALID="1", SUBMITIT_LOCAL_LOCALID="1", SUBMITIT_LOCAL_JOB_ID="4242")
    for var, value in env.items():  # what the local controller gives task 1
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    rank, dist = task_env(cpus=3)
    assert rank == 1 and {k: dist[k] for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "OMP_NUM_THREADS")} == \
        {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "OMP_NUM_THREADS": "3"}
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # set by the user (or the scheduler): kept
    assert "OMP_NUM_THREADS" not in task_env(cpus=3)[1]
    monkeypatch.setenv("SUBMITIT_LOCAL_NTASKS", "1")  # a one-task job: the environment unchanged
    assert task_env(cpus=3) == (0, {})
    monkeypatch.setenv("SUBMITIT_LOCAL_NTASKS", "2")
    # the child: rank 1 waiting for a rank 0 that never comes (a real, long-running stage)
    job = L.VptJob(["env", "--init", "--timeout", "120"], stop_timeout_s=20, cpus=1)

    def submitit_like_handler(signum: int, frame: object) -> None:
        raise AssertionError("rank 1 must not run submitit's handler")

    def signal_this_task() -> None:
        end = time.monotonic() + 60
        while L._CHILD is None and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGUSR2)

    previous = signal.signal(signal.SIGUSR2, submitit_like_handler)
    try:
        threading.Thread(target=signal_this_task, daemon=True).start()
        t0 = time.monotonic()
        with pytest.raises(SystemExit) as exit_:
            job()
        assert exit_.value.code == 0 and time.monotonic() - t0 < 60  # not the child's 120 s rendezvous time-out
        assert signal.getsignal(signal.SIGUSR2) is submitit_like_handler and L._CHILD is None
    finally:
        signal.signal(signal.SIGUSR2, previous)


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
