"""The Dask side of a batch: what a TA meets before anything is graded (an address no scheduler answers at, the
README's Slurm example and its job script) and the resources a task asks for.

A class graded on a real local cluster that loses a worker is in ``test_batch.py`` (it shares that file's class).
"""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path

import distributed
import pytest

from autograder import batch, cluster
from autograder.cli import batch as cli_batch
from autograder.harness.profiles import PROFILES
from tests.plugin import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def parsed(*argv: str) -> argparse.Namespace:
    """``batch``'s arguments as its command line parses ``argv``."""
    parser = argparse.ArgumentParser()
    cli_batch.add_parser(parser.add_subparsers())
    return parser.parse_args(["batch", *argv])


def test_an_address_no_scheduler_answers_at_stops_the_batch_and_says_how_to_start_one(tmp_path, capsys):
    with pytest.raises(cluster.ClusterError) as raised:
        cluster.connect(distributed, "tcp://127.0.0.1:9", timeout=1)
    assert "--scheduler tcp://127.0.0.1:9: no Dask scheduler answers there within 1 s" in str(raised.value)
    assert "Start one with `dask scheduler`" in str(raised.value)
    (tmp_path / "class" / "alice").mkdir(parents=True)
    args = parsed(str(tmp_path / "class"), "--out", str(tmp_path / "out"), "--scheduler", "host-without-port")
    assert cli_batch.run(args) == 2
    error = capsys.readouterr().err
    assert "error: --scheduler host-without-port: no Dask scheduler answers there" in error
    assert "leave out --scheduler to grade on this machine" in error and not (tmp_path / "out").exists()


def test_the_readmes_slurm_example_makes_the_job_script_it_shows(tmp_path, capsys):
    example = re.search(r"for example `slurm.toml`:\n\n```toml\n(.*?)```", README, re.S)
    shown = re.search(r"The job script it prints:\n\n```bash\n(.*?)```", README, re.S)
    assert example and shown, "the README's Slurm example is gone"
    config = tmp_path / "slurm.toml"
    config.write_text(example.group(1))
    (tmp_path / "class").mkdir()
    argv = ["--cluster", "slurm", "--cluster-config", str(config), "--print-job-script"]
    assert cli_batch.run(parsed(str(tmp_path / "class"), "--out", str(tmp_path / "out"), *argv)) == 0
    script = capsys.readouterr().out
    address = re.compile(r"tcp://[\d.]+:\d+")  # the scheduler's: where the batch runs
    assert address.sub("ADDRESS", script.strip()) == address.sub("ADDRESS", shown.group(1).strip())
    slurm_only = ("account", "job_extra_directives")  # SGE has no account; the directives are sbatch's
    portable = {key: value for key, value in tomllib.loads(example.group(1)).items() if key not in slurm_only}
    for kind, directive in (("pbs", "#PBS -q cpu"), ("sge", "#$ -q cpu")):
        with cluster.job_queue(kind, portable) as queue:
            assert directive in queue.job_script(), kind


def test_a_cluster_config_the_job_queue_refuses_says_which_key(tmp_path):
    with pytest.raises(cluster.ClusterError, match="(?s)SLURMCluster refuses it .*'cpus'.* its keys are"):
        cluster.job_queue("slurm", {"cpus": 4})
    with pytest.raises(cluster.ClusterError, match="--cluster-config .*nowhere.toml: cannot read it"):
        cluster.read_config(tmp_path / "nowhere.toml")


def test_a_task_asks_the_cluster_for_the_resources_its_profile_needs_and_grading_for_none():
    class Client:
        def submit(self, function, task, **options):
            return function, options["resources"]

    engine = cluster.DaskEngine(Client())
    alice = batch.Entry("alice", Path("/submissions/alice"))
    grading = batch.task_of(alice, ("schedules",), (), 60.0)
    gpu, cpu = (batch.task_of(alice, ("schedules",), (), 60.0, harness=profile) for profile in ("gpu", "cpu"))
    assert engine.submit(grading) == (cluster.run_on_worker, None)
    assert engine.submit(gpu) == (cluster.run_on_worker, {"GPU": 1})
    assert engine.submit(cpu) == (cluster.run_on_worker, None)
    commands = [command.argv[3] for command in gpu.commands(Path("/tmp/out"), threads=1)]
    assert commands == ["grade", "harness"] and [c.argv[3] for c in grading.commands(Path("/o"), 1)] == ["grade"]
    assert gpu.commands(Path("/tmp/out"), threads=1)[1].argv[-4:] == ["--out", "/tmp/out", "--threads", "1"]
    resources = {name: profile.resources for name, profile in PROFILES.items()}
    assert resources == {"ci": {}, "cpu": {}, "gpu": {"GPU": 1}, "gpu-tiny": {}}  # the tiny scale runs anywhere


def test_each_start_of_a_task_after_its_first_is_a_retry_and_another_batchs_tasks_do_not_count():
    engine = cluster.DaskEngine(client=None)
    engine.keys = {"grade-alice", "grade-bob"}
    for key in ("grade-alice", "grade-bob", "grade-alice", "grade-alice", "another-batchs", "another-batchs"):
        engine.started((0.0, key))
    assert engine.retried == 2


def test_a_grader_on_a_dask_worker_does_not_inherit_the_nannys_malloc_tuning(monkeypatch):
    """Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_`` for its worker (it made a grading 1.18x slower): the grader a
    worker starts runs without it, with the rest of the worker's environment."""

    class Worker:
        def log_event(self, topic, message):
            pass

        def get_current_task(self):
            return "grade-alice"

    started = {}
    monkeypatch.setattr(distributed, "get_worker", lambda: Worker())
    monkeypatch.setattr(cluster, "run_task", lambda task, root, threads, environ: started.update(environ=environ))
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    monkeypatch.setenv("KIT_TEST_MARKER", "kept")
    cluster.run_on_worker(batch.task_of(batch.Entry("alice", Path("/submissions/alice")), ("schedules",), (), 60.0))
    assert "MALLOC_TRIM_THRESHOLD_" not in started["environ"] and started["environ"]["KIT_TEST_MARKER"] == "kept"
