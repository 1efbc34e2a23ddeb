"""Fitting a softmax regression with plain stochastic gradient descent: the learned red-flag check
(``runbot train-checks``) and the FAQ model (``runbot train-faq``) are both trained with it."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence

Features = Callable[[Sequence[str]], Collection[str]]


def fit(
    rows: Sequence[tuple[Sequence[str], str]],
    features: Features,
    labels: Sequence[str],
    *,
    epochs: int,
    rate: float,
    decay: float,
    l2: float = 1e-4,
    seed: int = 1,
    min_lines: int = 2,
) -> tuple[dict[str, list[float]], list[float]]:
    """Weights (feature -> one weight per label) and biases for ``rows`` of (words, label); a feature in fewer
    than ``min_lines`` rows is dropped, and the learning rate is multiplied by ``decay`` after each epoch."""
    index = {label: j for j, label in enumerate(labels)}
    n = len(labels)
    seen: Counter[str] = Counter(f for words, _ in rows for f in features(words))
    xs = [(sorted(f for f in features(words) if seen[f] >= min_lines), index[label]) for words, label in rows]
    weights: dict[str, list[float]] = {}
    bias = [0.0] * n
    rng = random.Random(seed)
    for _ in range(epochs):
        rng.shuffle(xs)
        for fs, y in xs:
            ws = [weights.setdefault(f, [0.0] * n) for f in fs]
            z = bias[:]
            for w in ws:
                for j in range(n):
                    z[j] += w[j]
            top = max(z)
            exp = [math.exp(v - top) for v in z]
            total = sum(exp)
            grad = [exp[j] / total - (1.0 if j == y else 0.0) for j in range(n)]
            for j in range(n):
                bias[j] -= rate * grad[j]
            for w in ws:
                for j in range(n):
                    w[j] -= rate * (grad[j] + l2 * w[j])
        rate *= decay
    return weights, bias


def fit_averaged(
    rows: Sequence[tuple[Sequence[str], str]],
    features: Features,
    labels: Sequence[str],
    *,
    seeds: Sequence[int],
    **options: float,
) -> tuple[dict[str, list[float]], list[float]]:
    """``fit`` once per seed (each shuffles the lines in its own order) and the mean of the weights and biases: the
    same as averaging the runs' logits, which evens out the order's luck (single runs on held-out sets differ by
    up to 1.5 points; their mean did as well as the best of them)."""
    runs = [fit(rows, features, labels, seed=seed, **options) for seed in seeds]  # type: ignore[arg-type]
    n, share = len(labels), 1.0 / len(runs)
    weights: dict[str, list[float]] = {}
    for run_weights, _ in runs:
        for f, w in run_weights.items():
            total = weights.setdefault(f, [0.0] * n)
            for j in range(n):
                total[j] += share * w[j]
    bias = [share * sum(run_bias[j] for _, run_bias in runs) for j in range(n)]
    return weights, bias


def kept(weights: dict[str, list[float]], at_least: float) -> Iterable[tuple[str, list[tuple[int, float]]]]:
    """Each feature's weights of at least ``at_least`` in size, as (label index, weight); features left empty are
    not returned."""
    for f, w in weights.items():
        row = [(j, x) for j, x in enumerate(w) if abs(x) >= at_least]
        if row:
            yield f, row
