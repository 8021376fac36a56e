"""The embedded data sets (provided): a Gaussian mixture with exact density and score, and drawn shapes.

Every data set is deterministic from a seed and lives in [−1, 1]. :func:`load_dataset` builds them
by name; :func:`register_dataset` adds a name.

The Gaussian mixture is what makes grading without training possible. For data
``x0 ~ p = Σ_k w_k N(μ_k, Σ_k)``, the noised ``x_t = √ᾱ x0 + √(1 − ᾱ) eps`` is again a mixture
with means ``√ᾱ μ_k`` and covariances ``ᾱ Σ_k + (1 − ᾱ) I`` (:meth:`GaussianMixture.noised`), and
the optimal denoiser is Tweedie's formula ``E[eps | x_t] = −√(1 − ᾱ_t) · ∇ log p_t(x_t)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch.utils.data import Dataset, TensorDataset


class GaussianMixture:
    """``p(x) = Σ_k w_k N(x; μ_k, Σ_k)`` in ``D`` dimensions, one component per class ``k``.

    Parameters are stored in float64 on the CPU. Every method computes in the dtype and on the
    device of its ``x`` argument: pass float64 points for exact results.

    Args:
        means: ``(K, D)``.
        covariances: ``(K, D, D)``, symmetric positive definite.
        weights: ``(K,)``, positive, summing to 1; uniform when ``None``.
    """

    def __init__(self, means: torch.Tensor, covariances: torch.Tensor, weights: torch.Tensor | None = None) -> None:
        means = torch.as_tensor(means, dtype=torch.float64).cpu()
        covariances = torch.as_tensor(covariances, dtype=torch.float64).cpu()
        if means.dim() != 2:
            raise ValueError(f"means must have shape (K, D); got {tuple(means.shape)}")
        K, D = means.shape
        if covariances.shape != (K, D, D):
            raise ValueError(f"covariances must have shape (K, D, D) = ({K}, {D}, {D}); got {tuple(covariances.shape)}")
        if not torch.allclose(covariances, covariances.transpose(1, 2)):
            raise ValueError("covariances must be symmetric; pass (Σ + Σᵀ)/2 if they differ by rounding")
        chol, info = torch.linalg.cholesky_ex(covariances)
        if bool((info != 0).any()):
            bad = info.nonzero().flatten().tolist()
            raise ValueError(f"covariances must be positive definite; those of components {bad} are not")
        weights = torch.full((K,), 1.0 / K, dtype=torch.float64) if weights is None else torch.as_tensor(weights)
        weights = weights.to(torch.float64).cpu()
        if weights.shape != (K,) or bool((weights <= 0).any()) or abs(weights.sum().item() - 1) > 1e-9:
            raise ValueError(f"weights must be {K} positive numbers summing to 1; got {weights.tolist()}")
        self.means = means
        self.covariances = covariances
        self.weights = weights
        self._chol = chol  # (K, D, D), Σ_k = L_k L_kᵀ
        self._precisions = torch.cholesky_inverse(chol)  # (K, D, D), Σ_k⁻¹
        self._log_dets = 2 * chol.diagonal(dim1=1, dim2=2).log().sum(dim=1)  # (K,), log det Σ_k

    @classmethod
    def isotropic(
        cls, means: torch.Tensor, stds: torch.Tensor | float, weights: torch.Tensor | None = None
    ) -> GaussianMixture:
        """The mixture with covariances ``std_k² I``; ``stds`` is a float or ``(K,)``."""
        means = torch.as_tensor(means, dtype=torch.float64)
        K, D = means.shape
        stds = torch.as_tensor(stds, dtype=torch.float64).expand(K)
        return cls(means, stds[:, None, None] ** 2 * torch.eye(D, dtype=torch.float64), weights)

    @property
    def num_classes(self) -> int:
        """Number of components ``K``."""
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        """Data dimension ``D``."""
        return self.means.shape[1]

    def mean(self) -> torch.Tensor:
        """The mixture's mean ``Σ_k w_k μ_k``, float64 ``(D,)``."""
        return self.weights @ self.means

    def covariance(self) -> torch.Tensor:
        """The mixture's covariance ``Σ_k w_k (Σ_k + μ_k μ_kᵀ) − m mᵀ``, float64 ``(D, D)``."""
        outer = self.means[:, :, None] * self.means[:, None, :]  # (K, D, D), μ_k μ_kᵀ
        second_moment = torch.einsum("k,kde->de", self.weights, self.covariances + outer)
        m = self.mean()
        return second_moment - torch.outer(m, m)

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``n`` points: ``y ~ Categorical(w)`` (unless given), then ``x = μ_y + L_y z``, ``z ~ N(0, I)``.

        Random numbers are drawn on the CPU from ``generator`` and the results moved to ``device``.

        Args:
            y: long ``(n,)``: sample these classes instead of drawing them.

        Returns:
            ``(x, y)``: ``x`` of shape ``(n, D)`` in ``dtype``, ``y`` long ``(n,)``.
        """
        if y is None:
            y = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        else:
            y = self._check_labels(y, n).cpu()
        z = torch.randn(n, self.dim, dtype=torch.float64, generator=generator)
        x = self.means[y] + torch.einsum("nde,ne->nd", self._chol[y], z)
        device = torch.device("cpu") if device is None else torch.device(device)
        return x.to(device=device, dtype=dtype), y.to(device)

    def joint_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x, y = k) = log w_k + log N(x; μ_k, Σ_k)`` for every ``k``: ``(B, D)`` → ``(B, K)``.

        ``log N(x; μ, Σ) = −½ (D log 2π + log det Σ + (x − μ)ᵀ Σ⁻¹ (x − μ))``.
        """
        diff = self._diff(x)  # (B, K, D)
        mahalanobis = torch.einsum("bkd,kde,bke->bk", diff, self._like(x, self._precisions), diff)
        log_normal = -0.5 * (self.dim * math.log(2 * math.pi) + self._like(x, self._log_dets) + mahalanobis)
        return self._like(x, self.weights).log() + log_normal

    def log_prob(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """``log p(x) = logsumexp_k log p(x, k)``, or with ``y`` the class-conditional ``log N(x; μ_y, Σ_y)``.

        Shapes: ``x`` ``(B, D)``, ``y`` long ``(B,)`` → ``(B,)``.
        """
        joint = self.joint_log_prob(x)  # (B, K)
        if y is None:
            return torch.logsumexp(joint, dim=1)
        y = self._check_labels(y, x.shape[0]).to(x.device)
        return joint.gather(1, y[:, None]).squeeze(1) - self._like(x, self.weights).log()[y]

    def class_log_posterior(self, x: torch.Tensor) -> torch.Tensor:
        """Bayes' rule ``log p(y = k | x) = log p(x, k) − log p(x)``: ``(B, D)`` → ``(B, K)``."""
        return torch.log_softmax(self.joint_log_prob(x), dim=1)

    def score(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The score ``∇_x log p(x)`` in closed form: ``(B, D)`` → ``(B, D)``.

        Each component's score is ``s_k(x) = −Σ_k⁻¹ (x − μ_k)``. Unconditionally
        ``∇ log p(x) = Σ_k p(k | x) s_k(x)``; with labels ``y`` (long ``(B,)``) it is ``s_y(x)``.
        """
        component_scores = -torch.einsum("kde,bke->bkd", self._like(x, self._precisions), self._diff(x))  # (B, K, D)
        if y is None:
            posterior = torch.softmax(self.joint_log_prob(x), dim=1)  # (B, K), p(k | x)
            return torch.einsum("bk,bkd->bd", posterior, component_scores)
        y = self._check_labels(y, x.shape[0]).to(x.device)
        return component_scores[torch.arange(x.shape[0], device=x.device), y]

    def grad_log_prob_class(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The exact classifier gradient ``∇_x log p(y | x) = ∇ log p(x | y) − ∇ log p(x)``: ``(B, D)`` → ``(B, D)``.

        This is what classifier guidance (Dhariwal & Nichol 2021) adds to the score.
        """
        return self.score(x, y) - self.score(x)

    def noised(self, alpha_bar: float) -> GaussianMixture:
        """The law of ``x_t = √ᾱ x0 + √(1 − ᾱ) eps`` for ``x0`` from this mixture, ``eps ~ N(0, I)``.

        Again a mixture with the same weights: means ``√ᾱ μ_k``, covariances ``ᾱ Σ_k + (1 − ᾱ) I``.

        Raises:
            ValueError: if ``alpha_bar`` is not in [0, 1].
        """
        alpha_bar = float(alpha_bar)
        if not 0.0 <= alpha_bar <= 1.0:
            raise ValueError(f"alpha_bar must lie in [0, 1]; got {alpha_bar}")
        eye = torch.eye(self.dim, dtype=torch.float64)
        return GaussianMixture(
            math.sqrt(alpha_bar) * self.means, alpha_bar * self.covariances + (1 - alpha_bar) * eye, self.weights
        )

    @staticmethod
    def _like(x: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """A stored float64 parameter cast to ``x``'s dtype and device."""
        return value.to(device=x.device, dtype=x.dtype)

    def _diff(self, x: torch.Tensor) -> torch.Tensor:
        """``x − μ_k`` for every ``k``: ``(B, D)`` → ``(B, K, D)``."""
        if x.dim() != 2 or x.shape[1] != self.dim or not x.is_floating_point():
            raise ValueError(
                f"x must be a floating tensor of shape (B, {self.dim}) for this {self.dim}-D mixture; "
                f"got {x.dtype} of shape {tuple(x.shape)}"
            )
        return x[:, None, :] - self._like(x, self.means)[None]

    def _check_labels(self, y: torch.Tensor, n: int) -> torch.Tensor:
        """``y`` if it is a long ``(n,)`` tensor of valid labels, else ``ValueError``."""
        if not isinstance(y, torch.Tensor) or y.shape != (n,) or y.dtype != torch.long:
            raise ValueError(f"y must be a long tensor of shape ({n},); got {y!r:.80}")
        if n and not (int(y.min()) >= 0 and int(y.max()) < self.num_classes):
            raise ValueError(
                f"labels must lie in 0..{self.num_classes - 1} for this mixture; got {int(y.min())}..{int(y.max())}"
            )
        return y


def default_mixture(num_classes: int = 8, radius: float = 0.6, std: float = 0.07) -> GaussianMixture:
    """The course's 2-D mixture: ``num_classes`` equal-weight isotropic components on a ring.

    ``μ_k = radius · (cos 2πk/K, sin 2πk/K)``, ``Σ_k = std² I``. With the defaults a sample leaves
    [−1, 1]² with probability below 1e−8 (the ring's edge is 5.7 stds inside the square).
    """
    angles = 2 * math.pi * torch.arange(num_classes, dtype=torch.float64) / num_classes
    means = radius * torch.stack([angles.cos(), angles.sin()], dim=1)  # (K, 2)
    return GaussianMixture.isotropic(means, std)


class MixtureDataset(Dataset):
    """``n`` labelled points ``(x, y)`` drawn from a :class:`GaussianMixture` with a seed.

    Attributes:
        points: float32 ``(n, D)``; labels: long ``(n,)``; mixture: the true distribution.
    """

    def __init__(self, mixture: GaussianMixture, n: int, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        points, labels = mixture.sample(n, generator=generator)
        self.mixture = mixture
        self.points = points.to(torch.float32)
        self.labels = labels
        self.num_classes = mixture.num_classes
        self.class_names = tuple(f"component {k}" for k in range(mixture.num_classes))

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.points[index], self.labels[index]


def _inside_disk(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return u**2 + v**2 <= 1


def _inside_square(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.maximum(u.abs(), v.abs()) <= 0.8


def _inside_triangle(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """An equilateral triangle pointing up: three half-planes at distance 0.6 (circumradius 1.2)."""
    inside = v <= 0.6  # the base, outward normal (0, 1) (rows grow downwards)
    for angle in (-math.pi / 6, 7 * math.pi / 6):  # outward normals of the slanted edges, the base's ± 120°
        inside &= u * math.cos(angle) + v * math.sin(angle) <= 0.6
    return inside


def _inside_cross(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    au, av = u.abs(), v.abs()
    return ((au <= 0.35) & (av <= 1)) | ((av <= 0.35) & (au <= 1))


def _inside_ring(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    rho2 = u**2 + v**2
    return (rho2 <= 1) & (rho2 >= 0.25)


def _inside_bar(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (u.abs() <= 1) & (v.abs() <= 0.35)


SHAPES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "disk": _inside_disk,
    "square": _inside_square,
    "triangle": _inside_triangle,
    "cross": _inside_cross,
    "ring": _inside_ring,
    "bar": _inside_bar,
}
"""Each class as an indicator on its local coordinates ``(u, v)``; every shape fits in radius 1.2."""


class ShapesDataset(Dataset):
    """``n`` procedurally drawn labelled shapes, ``(1, size, size)`` images in [−1, 1] (background −1).

    Classes are the keys of :data:`SHAPES`, balanced (``n // K`` or one more each) and shuffled.
    Each image draws, from a generator seeded with ``seed``: a scale ``r ∈ [0.45, 0.7]`` (in units of
    the half-width), a rotation in ±20°, a centre that keeps the shape inside the frame, and a
    foreground value ``a ∈ [0.2, 1]``. A point ``p`` of the frame [−1, 1]² has local coordinates
    ``(u, v) = R(−θ)(p − c) / r``; a pixel is ``−1 + (a + 1) · coverage``, the coverage being the
    fraction of its ``supersample²`` sub-pixel centres inside the shape (antialiasing). All images
    are rendered at construction, one class and chunk at a time, vectorised.

    Attributes:
        images: float32 ``(n, 1, size, size)``; labels: long ``(n,)``; size; num_classes; class_names.
    """

    class_names: tuple[str, ...] = tuple(SHAPES)
    num_classes: int = len(SHAPES)

    def __init__(self, n: int, size: int = 16, seed: int = 0, supersample: int = 2, chunk: int = 1024) -> None:
        if n < 1 or size < 4 or supersample < 1:
            raise ValueError(f"need n >= 1, size >= 4 and supersample >= 1; got n={n}, size={size}, {supersample=}")
        generator = torch.Generator().manual_seed(seed)
        K = self.num_classes
        self.labels = (torch.arange(n) % K)[torch.randperm(n, generator=generator)]  # (n,), balanced
        params = torch.rand(n, 5, generator=generator)  # (n, 5), one row per image
        scale = 0.45 + 0.25 * params[:, 0]
        angle = (params[:, 1] - 0.5) * (2 * math.pi / 9)  # ±20°
        room = 0.92 - 1.2 * scale  # the centre may move this far without the shape leaving the frame
        centre = (2 * params[:, 2:4] - 1) * room[:, None]  # (n, 2), (x, y)
        value = 0.2 + 0.8 * params[:, 4]
        self.size = size
        self.images = torch.empty(n, 1, size, size)
        for k, inside in enumerate(SHAPES.values()):
            for idx in (self.labels == k).nonzero().flatten().split(chunk):
                parameters = scale[idx], angle[idx], centre[idx], value[idx]
                self.images[idx] = self._render(inside, *parameters, size, supersample)

    @staticmethod
    def _render(
        inside: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        scale: torch.Tensor,
        angle: torch.Tensor,
        centre: torch.Tensor,
        value: torch.Tensor,
        size: int,
        supersample: int,
    ) -> torch.Tensor:
        """Draw ``m`` images of one class from per-image parameters ``(m,)`` (``centre`` ``(m, 2)``).

        Returns:
            float32 ``(m, 1, size, size)``.
        """
        fine = size * supersample
        grid = (torch.arange(fine, dtype=torch.float32) + 0.5) / fine * 2 - 1  # sub-pixel centres in (−1, 1)
        px = grid[None, None, :] - centre[:, 0, None, None]  # (m, 1, fine): columns
        py = grid[None, :, None] - centre[:, 1, None, None]  # (m, fine, 1): rows
        cos, sin = (angle.cos() / scale)[:, None, None], (angle.sin() / scale)[:, None, None]  # rotation / scale
        u = cos * px + sin * py  # (m, fine, fine)
        v = cos * py - sin * px
        coverage = torch.nn.functional.avg_pool2d(inside(u, v)[:, None].to(torch.float32), supersample)
        return -1 + (value[:, None, None, None] + 1) * coverage  # (m, 1, size, size)

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]


Split = Literal["train", "test"]
DatasetBuilder = Callable[[int | None, int, Split], Dataset]
"""``build(n, seed, split) -> Dataset`` of ``(x, y)`` pairs; ``n = None`` means the builder's default."""

DATASETS: dict[str, DatasetBuilder] = {}
"""The registry read by :func:`load_dataset`: name → builder."""


def register_dataset(name: str, build: DatasetBuilder) -> None:
    """Make ``load_dataset(name, ...)`` call ``build(n, seed, split)``.

    Raises:
        ValueError: if ``name`` is already registered.
    """
    if name in DATASETS:
        raise ValueError(f"a data set named {name!r} is already registered; choose another name")
    DATASETS[name] = build


def split_seed(seed: int, split: Split) -> int:
    """The seed a procedural data set draws ``split`` from: ``2·seed`` for train, ``2·seed + 1`` for test.

    Train and test never share a seed, for any pair of user seeds.
    """
    if split == "train":
        return 2 * seed
    if split == "test":
        return 2 * seed + 1
    raise ValueError(f"split must be 'train' or 'test'; got {split!r}")


def load_dataset(name: str, n: int | None = None, seed: int = 0, split: Split = "train") -> Dataset:
    """The data set ``name`` as a :class:`~torch.utils.data.Dataset` of ``(x, y)`` pairs.

    Known names: ``"mixture2d"`` (:func:`default_mixture`, points ``(2,)``, default ``n = 10000``),
    ``"shapes16"`` and ``"shapes28"`` (:class:`ShapesDataset`, images ``(1, 16, 16)`` /
    ``(1, 28, 28)``, default ``n = 10000``), and read from files on this machine
    (:mod:`diffusion.image_files`; all of the split by default): ``"fashion28"`` (Fashion-MNIST) and
    ``"mnist28"`` (MNIST), images ``(1, 28, 28)``, ``"cifar32"`` (CIFAR-10), images ``(3, 32, 32)``.
    The same ``(name, n, seed, split)`` gives the same data.

    Raises:
        ValueError: for an unknown name (the message lists the known ones) or split.
        DataUnavailable: for a data set read from files that are not on this machine (it says how to get them).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(sorted(DATASETS))}")
    if n is not None and n < 1:
        raise ValueError(f"n must be a positive number of examples or None for the default; got {n}")
    return DATASETS[name](n, seed, split)


register_dataset(
    "mixture2d", lambda n, seed, split: MixtureDataset(default_mixture(), n or 10_000, split_seed(seed, split))
)
register_dataset("shapes16", lambda n, seed, split: ShapesDataset(n or 10_000, 16, split_seed(seed, split)))
register_dataset("shapes28", lambda n, seed, split: ShapesDataset(n or 10_000, 28, split_seed(seed, split)))


class LabelledImages(TensorDataset):
    """Pairs ``(x, y)`` of images ``(N, C, H, W)`` and long labels ``(N,)``, with the data set's ``num_classes``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
        super().__init__(images, labels)
        self.num_classes = num_classes


def _from_files(name: str) -> DatasetBuilder:
    """A builder for the data set ``name`` read from files (:mod:`diffusion.image_files`): all of ``split``, or
    ``n`` of its examples drawn with ``seed``."""

    def build(n: int | None, seed: int, split: Split) -> Dataset:
        from diffusion.image_files import IMAGE_FILES, load_image_files

        images, labels = load_image_files(name, split).tensors
        num_classes = IMAGE_FILES[name].num_classes
        if n is not None:
            index = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:n]
            images, labels = images[index], labels[index]
        return LabelledImages(images, labels, num_classes)

    return build


for _name in ("fashion28", "mnist28", "cifar32"):
    register_dataset(_name, _from_files(_name))
