"""The harness's experiment, owned by the grader: the student's code only answers calls.

The grader runs the kit's provided script, :func:`diffusion.evaluate.run_plan` of the reference package, in its
own process: the data, the labels, the provided denoiser (:class:`~diffusion.mlp.MLPDenoiser` or
:class:`~diffusion.unet.UNet`) and its weights, the optimiser, the EMA and the clock are the grader's. Every
function of the student's parts the plan calls (``parts`` of :func:`~diffusion.evaluate.run_plan`) runs in a
sandboxed worker that imports the student's whole package (:class:`~autograder.isolation.remote.WholeSubmission`):

- the schedule: ``schedules.linear_betas`` / ``cosine_betas`` and ``make_schedule``;
- training: ``guidance.drop_labels`` and ``losses.ddpm_loss``, called with the grader's model as a proxy; the loss
  comes back attached to the grader's graph (:func:`autograder.isolation.calls.attach`), so the grader's
  ``backward()`` and optimiser step train its own weights;
- in a latent plan, the grader's VAE trained on ``vae.vae_loss`` (its ``loss`` comes back with its gradients with
  respect to the grader's reconstruction, ``mu`` and ``logvar``, attached likewise: :func:`attached_terms`) and
  ``latent.latent_scale_factor``; the grader's :class:`~diffusion.latent.LatentDiffusion` decodes the latents the
  student's samplers draw;
- sampling: ``ddpm.p_sample_loop`` and ``ddim.ddim_sample_loop`` with the grader's EMA model as a proxy (through
  the kit's ``guided_denoiser`` and the student's ``guidance.cfg_eps`` for guidance), timed by the grader, their
  samples vetted (:func:`vetted_sampler`) before anything scores them: the run's trajectory through the model
  is checked step by step as the hidden checks do (:mod:`autograder.checks.trajectory`), so the samples scored
  are the ones the grader's model made.

Whatever the student's modules patch in the worker (the kit's modules, the worker's own code), they change only
what their own functions answer; the answers are checked here.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from autograder.checks.denoisers import Denoiser
from autograder.checks.trajectory import Sampling, ddim_rule, ddpm_rule, verify
from autograder.harness import budget
from autograder.isolation.calls import attach
from autograder.isolation.errors import GraderError, StudentError
from autograder.isolation.remote import WholeSubmission
from autograder.reference import load_reference, reference_module
from autograder.sandbox.limits import Limits

STALL_SECONDS = 10.0
"""A call that has not used the model for this long is the student's code at work (or stuck), not the grader's."""
GUIDED_CALLS = 2
"""Model rows per sample and step at most, for a sampler still working as planned (guidance evaluates the
conditional and the unconditional model)."""
REFERENCE = load_reference()
RECORDING_SLACK = 2
"""A run's recording may hold this many times the calls and values its steps need (the grader's work is bounded)."""


class GraderAbort(BaseException):
    """Carries a :class:`GraderError` through the provided script's ``except Exception`` (it is not the student's
    failure to report): :func:`run_plan` raises the error again."""

    def __init__(self, error: GraderError) -> None:
        super().__init__(str(error))
        self.error = error


def _grader_errors_abort(function: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except GraderError as error:
            raise GraderAbort(error) from None

    return call


def forked_generator(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` with its ``generator`` keyword replaced by a child generator seeded from a draw of it.

    A worker's draws never advance the grader's generator (nothing flows back): without this, the loss would draw
    ``t`` and the noise from the very state label dropout drew its uniforms from, and correlate them.
    """

    def call(*args: Any, **kwargs: Any) -> Any:
        parent = kwargs.get("generator")
        if isinstance(parent, torch.Generator):
            seed = int(torch.randint(0, 2**62, (1,), generator=parent, device=parent.device))
            kwargs["generator"] = torch.Generator(device=parent.device).manual_seed(seed)
        return function(*args, **kwargs)

    return call


class OnDevice:
    """``model`` (the grader's, on ``device``) called with its tensor arguments moved to ``device`` first.

    The worker's tensors come back on the device they were on there: a worker that cannot reach the grader's
    device (a GPU its sandbox does not see), or a student's loop that left its tensors on the CPU, still gets the
    answers it would get on a CPU grader (the hidden checks, not the harness, judge the contract's devices)."""

    def __init__(self, model: Callable[..., torch.Tensor], device: torch.device) -> None:
        self.model, self.device = model, device

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        args = tuple(self._moved(value) for value in args)
        return self.model(*args, **{name: self._moved(value) for name, value in kwargs.items()})

    def _moved(self, value: Any) -> Any:
        return value.to(self.device) if isinstance(value, torch.Tensor) else value


def with_model_on(function: Callable[..., Any], device: torch.device) -> Callable[..., Any]:
    """``function(model, ...)`` (the student's, remote) with the grader's ``model`` called on ``device``
    (:class:`OnDevice`)."""

    def call(model: Callable[..., torch.Tensor], *args: Any, **kwargs: Any) -> Any:
        return function(OnDevice(model, device), *args, **kwargs)

    return call


class CountingModel:
    """The grader's denoiser, on ``device``, as a sampler sees it (:class:`OnDevice`): counts the rows it evaluates
    and notes when it was last busy."""

    def __init__(self, model: Callable[..., torch.Tensor], device: torch.device) -> None:
        self.model, self.rows, self.busy, self.last = OnDevice(model, device), 0, False, time.monotonic()

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        self.rows += int(x_t.shape[0]) if isinstance(x_t, torch.Tensor) and x_t.dim() > 0 else 0
        self.busy = True  # left set when the call's time runs out inside the model
        out = self.model(x_t, t, *args, **kwargs)
        self.busy, self.last = False, time.monotonic()
        return out

    def still_working(self, expected: int) -> bool:
        """Whether the code that calls the model was still working as planned: no more than ``expected`` rows
        so far, and the model running, or called within the last :data:`STALL_SECONDS`."""
        return self.rows <= expected and (self.busy or time.monotonic() - self.last < STALL_SECONDS)


def out_of_time(error: StudentError, counted: CountingModel, expected: int) -> GraderAbort | None:
    """The grader's error for a call of the student's that ran out of time while still working as planned (the
    machine was too slow for the limit: not the student's failure), else ``None``."""
    if error.error_type != "TimeoutError" or not counted.still_working(expected):
        return None
    return GraderAbort(
        GraderError(
            f"{error.part}.{error.function} was still working as planned when its wall-time limit ran out "
            f"({counted.rows} of {expected} model rows evaluated): the machine was too slow or too busy for the "
            "limit, which is the grader's problem, not the submission's; run the harness again on a quieter "
            "machine or with fewer --threads"
        )
    )


def within_budget(deadline: float) -> None:
    """Raise the grader's error when the plan has run past ``deadline`` (``time.monotonic()``), the time
    :func:`autograder.harness.budget.plan_seconds` gives it: each call kept within its own limit, so the machine is
    too slow or too busy for the plan."""
    if time.monotonic() > deadline:
        raise GraderAbort(
            GraderError(
                "the plan ran past the time it was given (sized from the plan) while every call of the student's "
                "code kept within its own limit: the machine was too slow or too busy, which is the grader's "
                "problem, not the submission's; run the harness again on a quieter machine or with fewer --threads"
            )
        )


def watched_loss(loss: Callable[..., Any], deadline: float, device: torch.device) -> Callable[..., Any]:
    """``loss(model, schedule, x0, ...)`` (the student's, remote) with the grader's model counted: a call that runs
    out of time while still working as planned is the grader's error (:func:`out_of_time`), and so is a call past
    the plan's ``deadline`` (:func:`within_budget`)."""

    def call(model: Callable[..., torch.Tensor], schedule: Any, x0: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        within_budget(deadline)
        counted = CountingModel(model, device)
        try:
            return loss(counted, schedule, x0, *args, **kwargs)
        except StudentError as error:
            raise out_of_time(error, counted, GUIDED_CALLS * len(x0)) or error from None

    return call


class RecordedModel(Denoiser):
    """The grader's model as a sampler sees it: each call's ``x_t`` and answer kept (CPU copies) for
    :func:`~autograder.checks.trajectory.verify`, within :data:`RECORDING_SLACK` times what ``sampling`` needs."""

    def __init__(self, model: Callable[..., torch.Tensor], sampling: Sampling, shape: tuple[int, ...]) -> None:
        super().__init__(record_inputs=True, record_outputs=True)
        self.model = model
        steps = len(sampling.timesteps)
        self.max_calls = RECORDING_SLACK * steps
        self.max_values = RECORDING_SLACK * steps * shape[0] * (2 * math.prod(shape[1:]) + 2)

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return self.model(x_t, t, **kwargs)


def on_cpu(schedule: Any) -> Any:
    """``schedule`` with its fields as float64 CPU tensors, for the update rules (the recordings are on the CPU)."""
    fields = {f.name: getattr(schedule, f.name).detach().cpu().double() for f in dataclasses.fields(schedule)}
    return dataclasses.replace(schedule, **fields)


def ddpm_sampling(schedule: Any, shape: tuple[int, ...], kwargs: dict[str, Any]) -> Sampling:
    """What ``p_sample_loop(model, schedule, shape, **kwargs)`` must do, for :func:`verify` (defaults: the API's)."""
    options = _options(REFERENCE.ddpm.p_sample_loop, schedule, shape, kwargs)
    return Sampling(
        "p_sample_loop",
        f"the harness's DDPM run of {shape[0]} samples, T = {schedule.T}",
        list(range(schedule.T - 1, -1, -1)),
        shape[0],
        ddpm_rule(on_cpu(schedule), clip_denoised=options["clip_denoised"], variance=options["variance"]),
        "the mean of p_θ(x_{t−1} | x_t) + √variance·z",
        "samples must come from the model: each step evaluates it on the current state and moves to the mean of "
        "p_θ(x_{t−1} | x_t) for its answer plus fresh noise (none at t = 0)",
        start=_cpu(options["noise"]),
        labels=_cpu(options["model_kwargs"].get("y")),
    )


def ddim_sampling(schedule: Any, shape: tuple[int, ...], kwargs: dict[str, Any]) -> Sampling:
    """What ``ddim_sample_loop(model, schedule, shape, **kwargs)`` must do, for :func:`verify` (defaults: the API's)."""
    options = _options(REFERENCE.ddim.ddim_sample_loop, schedule, shape, kwargs)
    timesteps = REFERENCE.ddim.ddim_timesteps(schedule.T, options["num_steps"], options["spacing"])
    return Sampling(
        "ddim_sample_loop",
        f"the harness's DDIM run of {shape[0]} samples, {options['num_steps']} steps, η = {options['eta']:g}",
        [int(t) for t in timesteps.flip(0)],  # visited in descending order
        shape[0],
        ddim_rule(on_cpu(schedule), eta=float(options["eta"]), clip_denoised=options["clip_denoised"]),
        "DDIM's eq. 12 + σ·z",
        "samples must come from the model: each step evaluates it on the current state at the step's timestep and "
        "moves to eq. 12 for its answer",
        start=_cpu(options["noise"]),
        labels=_cpu(options["model_kwargs"].get("y")),
    )


def _options(sampler: Callable[..., Any], schedule: Any, shape: tuple[int, ...], kwargs: dict[str, Any]) -> dict:
    """Every argument of ``sampler(model, schedule, shape, **kwargs)`` by name, the API's defaults filled in."""
    bound = inspect.signature(sampler).bind(None, schedule, shape, **kwargs)
    bound.apply_defaults()
    return bound.arguments


def _cpu(value: torch.Tensor | None) -> torch.Tensor | None:
    return value.detach().cpu() if isinstance(value, torch.Tensor) else None


def check_samples(samples: Any, shape: tuple[int, ...]) -> None:
    """Raise ``ValueError`` unless ``samples`` is exactly ``shape`` of finite floating-point values."""
    if not isinstance(samples, torch.Tensor):
        raise ValueError(f"the sampler returned a {type(samples).__name__}, expected a tensor of shape {shape}")
    if tuple(samples.shape) != tuple(shape):
        raise ValueError(
            f"the sampler returned {tuple(samples.shape)[:8]}, expected exactly {shape[0]} samples: shape {shape}"
        )
    if not samples.is_floating_point():
        raise ValueError(f"the sampler returned {samples.dtype} samples, expected floating point")
    bad = int((~torch.isfinite(samples)).sum())
    if bad:
        raise ValueError(f"the sampler returned {bad} NaN or infinite values among its samples")


def vetted_sampler(
    sampler: Callable[..., Any],
    sampling: Callable[[Any, tuple[int, ...], dict[str, Any]], Sampling],
    fresh: Callable[[], None],
    deadline: float,
    device: torch.device,
) -> Callable[..., torch.Tensor]:
    """``sampler(model, schedule, shape, **kwargs)`` (the student's, remote) with the grader's model recorded and
    the answer checked: exactly ``shape``, finite floats (:func:`check_samples`), and the trajectory of
    ``sampling(schedule, shape, kwargs)`` through the model, its last update returned (:func:`verify`).
    ``fresh()`` runs first (a worker stopped by an earlier run starts again). Timeouts of a sampler still at work,
    and runs past the plan's ``deadline``, are the grader's errors (:func:`out_of_time`, :func:`within_budget`)."""

    def run(model: Callable[..., torch.Tensor], schedule: Any, shape: tuple[int, ...], **kwargs: Any) -> torch.Tensor:
        within_budget(deadline)
        fresh()
        expected = sampling(schedule, tuple(shape), kwargs)
        recorded = RecordedModel(model, expected, tuple(shape))
        counted = CountingModel(recorded, device)
        try:
            samples = sampler(counted, schedule, tuple(shape), **kwargs)
        except StudentError as error:
            raise out_of_time(error, counted, GUIDED_CALLS * shape[0] * len(expected.timesteps)) or error from None
        check_samples(samples, tuple(shape))
        verify(recorded, samples.detach().cpu(), expected)
        return samples

    return run


VAE_LOSS_INPUTS = (1, 2, 3)
"""The arguments of ``vae_loss(x, x_recon, mu, logvar, kl_weight)`` the grader's VAE made: the gradient flows there."""


def attached_terms(terms_with_gradients: Callable[..., Any]) -> Callable[..., dict[str, torch.Tensor]]:
    """``vae_loss(x, x_recon, mu, logvar, kl_weight=...)`` (the student's, remote, with its gradients with respect
    to :data:`VAE_LOSS_INPUTS`) whose ``loss`` is attached to the grader's graph
    (:func:`~autograder.isolation.calls.attach`): ``backward()`` on it trains the grader's VAE.

    Raises:
        ValueError: the answer is not a dict with a scalar ``loss`` through which a gradient flows (the training's
            error: the plan reports it).
    """

    def call(*args: torch.Tensor, **kwargs: Any) -> dict[str, torch.Tensor]:
        one = torch.ones((), dtype=args[VAE_LOSS_INPUTS[0]].dtype)
        value, grads = terms_with_gradients(*args, cotangent={"loss": one}, **kwargs)
        if not isinstance(value, dict) or not isinstance(value.get("loss"), torch.Tensor):
            raise ValueError(f"vae_loss returned {type(value).__name__}, expected a dict with a tensor 'loss'")
        outputs = [args[i] for i in VAE_LOSS_INPUTS]
        try:
            return {**value, "loss": attach(value["loss"], outputs, grads)}
        except ValueError as error:  # not a loss that trains anything: the student's
            raise ValueError(f"vae_loss's 'loss' {error}") from None

    return call


def student_parts(submission: WholeSubmission, deadline: float, device: torch.device) -> SimpleNamespace:
    """The ``parts`` of :func:`diffusion.evaluate.run_plan` whose functions run the student's code in ``submission``
    (see :data:`diffusion.evaluate.PACKAGE_PARTS`), the grader's model on ``device``."""

    def remote(part: str, name: str) -> Callable[..., Any]:
        return _grader_errors_abort(submission.function(part, name))

    loss = _grader_errors_abort(submission.differentiable("losses", "ddpm_loss"))
    terms = _grader_errors_abort(submission.gradient("vae", "vae_loss", wrt=VAE_LOSS_INPUTS))
    return SimpleNamespace(
        vae=SimpleNamespace(vae_loss=attached_terms(terms)),
        latent=SimpleNamespace(latent_scale_factor=remote("latent", "latent_scale_factor")),
        schedules=SimpleNamespace(
            linear_betas=remote("schedules", "linear_betas"),
            cosine_betas=remote("schedules", "cosine_betas"),
            make_schedule=remote("schedules", "make_schedule"),
        ),
        losses=SimpleNamespace(ddpm_loss=forked_generator(watched_loss(loss, deadline, device))),
        guidance=SimpleNamespace(
            drop_labels=forked_generator(remote("guidance", "drop_labels")),
            cfg_eps=with_model_on(remote("guidance", "cfg_eps"), device),
        ),
        ddpm=SimpleNamespace(
            p_sample_loop=vetted_sampler(
                remote("ddpm", "p_sample_loop"), ddpm_sampling, submission.next_check, deadline, device
            )
        ),
        ddim=SimpleNamespace(
            ddim_sample_loop=vetted_sampler(
                remote("ddim", "ddim_sample_loop"), ddim_sampling, submission.next_check, deadline, device
            )
        ),
    )


def run_plan(package: Path, plan: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """The report of :func:`diffusion.evaluate.run_plan` for ``plan``, run by the grader with the student's functions
    of the :func:`~autograder.harness.runner.overlay` ``package`` in workers under ``limits``.

    Raises:
        GraderError: the sandbox could not run code here, or a correct solution ran out of time on this machine
            (a call still at work at its limit, or the plan past :func:`~autograder.harness.budget.plan_seconds`).
    """
    evaluate = reference_module("evaluate")
    with WholeSubmission(package, {"default": limits}) as submission:
        deadline = time.monotonic() + budget.plan_seconds(plan)
        try:
            plan, device, dataset, report = evaluate.prepare(plan)
            parts = student_parts(submission, deadline, device)
            trained = evaluate.train_phase(plan, dataset, device, report, parts)
            if trained is not None:  # as evaluate.run_plan, with the grader's own measure of the training
                report["train"]["held_out"] = held_out_losses(trained, plan)
                evaluate.sample_phase(plan, trained, device, report, parts)
        except GraderAbort as abort:
            raise abort.error from None
    return report


HELD_OUT = 4096
"""Held-out examples the grader measures the trained model's loss on (fewer for images: ``n_samples``)."""


def held_out_losses(trained: Any, plan: Any) -> dict[str, float]:
    """The grader's measure of the training: the simple loss (the reference's ``ddpm_loss``, the student's schedule)
    of the trained EMA model on held-out data (their latents in a latent plan), with ``t`` and the noise drawn from a
    fixed seed, and of the zero predictor on the same draws (``E‖eps‖² ≈ 1``: an untrained model's).
    ``{"model", "zero"}``."""
    data, losses = reference_module("data"), reference_module("losses")
    n = HELD_OUT if len(trained.data_shape) == 1 else plan.n_samples
    held_out = data.load_dataset(plan.data, n=n, seed=plan.seed, split="test")
    x0 = torch.stack([held_out[i][0] for i in range(len(held_out))])
    y = torch.as_tensor([int(held_out[i][1]) for i in range(len(held_out))])
    device = next(trained.model.parameters()).device
    x0, y = x0.to(device), y.to(device)
    if trained.pipeline is not None:  # a latent plan's model denoises the scaled latents
        x0 = trained.pipeline.encode(x0)

    def measured(model: Callable[..., torch.Tensor]) -> float:
        generator = torch.Generator().manual_seed(plan.seed + 7919)
        with torch.no_grad():
            return float(losses.ddpm_loss(model, trained.schedule, x0, generator=generator, y=y))

    return {"model": measured(trained.model), "zero": measured(lambda x_t, t, y=None: torch.zeros_like(x_t))}
