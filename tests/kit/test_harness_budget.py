"""The harness's share of the machine: its thread count and its wall-time limits (:mod:`autograder.harness.budget`),
and a timeout that is the grader's problem told apart from the student's (:mod:`autograder.harness.experiment`).

The harness on the reference while both cores are busy: ``python benchmarks/harness_loaded.py``."""

from __future__ import annotations

import os
import time

import pytest
import torch

from autograder.harness import budget, experiment
from autograder.harness.profiles import MIXTURE_CI, MIXTURE_CPU, PROFILES
from autograder.isolation.errors import GraderError, StudentError


def test_threads_follow_the_request_then_omp_num_threads_then_the_idle_cores(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert budget.choose_threads(5) == 5
    assert budget.choose_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(budget, "available_cores", lambda: 8)
    monkeypatch.setattr(budget, "busy_cores", lambda: 6)
    assert budget.choose_threads() == 2
    monkeypatch.setattr(budget, "busy_cores", lambda: 9)  # more busy than there are cores: still one thread
    assert budget.choose_threads() == 1


@pytest.mark.parametrize(("requested", "omp", "message"), [(0, "", "--threads"), (None, "two", "OMP_NUM_THREADS")])
def test_a_bad_thread_count_is_refused_naming_what_to_fix(monkeypatch, requested, omp, message):
    monkeypatch.setenv("OMP_NUM_THREADS", omp)
    with pytest.raises(ValueError, match=message):
        budget.choose_threads(requested)


def test_the_machine_is_measured():
    assert 1 <= budget.available_cores() <= os.cpu_count()
    assert budget.busy_cores() >= 0


def test_wall_limits_grow_with_the_plan_and_keep_a_floor():
    base = PROFILES["ci"].limits
    ci, cpu = budget.plan_limits(base, MIXTURE_CI), budget.plan_limits(base, MIXTURE_CPU)
    assert ci.wall_seconds == budget.FLOOR_SECONDS
    assert cpu.wall_seconds > ci.wall_seconds
    bigger = budget.plan_limits(base, {**MIXTURE_CPU, "n_samples": 4 * MIXTURE_CPU["n_samples"]})
    assert bigger.wall_seconds == pytest.approx(4 * cpu.wall_seconds, rel=0.01)
    assert budget.largest_call_rows(MIXTURE_CI) == MIXTURE_CI["n_samples"] * MIXTURE_CI["T"]


def test_the_plan_is_given_more_time_than_its_largest_call_and_more_for_more_work():
    assert budget.plan_seconds(MIXTURE_CI) > budget.plan_limits(PROFILES["ci"].limits, MIXTURE_CI).wall_seconds
    assert budget.plan_seconds(MIXTURE_CPU) > budget.plan_seconds(MIXTURE_CI)


def test_a_plan_past_its_time_is_a_grader_error():
    experiment.within_budget(time.monotonic() + 60)  # within: nothing happens
    with pytest.raises(experiment.GraderAbort) as caught:
        experiment.within_budget(time.monotonic() - 1)
    assert isinstance(caught.value.error, GraderError) and "not the submission's" in str(caught.value.error)


def timeout() -> StudentError:
    return StudentError("ddpm", "p_sample_loop", "TimeoutError", "no answer within the wall-time limit")


def test_a_timeout_while_the_model_is_still_in_use_as_planned_is_a_grader_error():
    counted = experiment.CountingModel(lambda x, t: x, torch.device("cpu"))
    counted(torch.zeros(10, 2), torch.zeros(10, dtype=torch.long))
    abort = experiment.out_of_time(timeout(), counted, expected=100)
    assert abort is not None and isinstance(abort.error, GraderError)
    assert "not the submission's" in str(abort.error)


def test_a_timeout_after_the_model_stopped_being_used_or_past_the_plan_is_the_students():
    counted = experiment.CountingModel(lambda x, t: x, torch.device("cpu"))
    counted(torch.zeros(10, 2), torch.zeros(10, dtype=torch.long))
    assert experiment.out_of_time(timeout(), counted, expected=5) is None  # more model rows than planned
    counted.last = time.monotonic() - 2 * experiment.STALL_SECONDS  # stuck in the student's own code
    assert experiment.out_of_time(timeout(), counted, expected=100) is None
    other = StudentError("ddpm", "p_sample_loop", "ValueError", "bad shape")
    assert (
        experiment.out_of_time(other, experiment.CountingModel(lambda x, t: x, torch.device("cpu")), expected=100)
        is None
    )
