"""Per-feature drift tests of a current window against the reference profile.

Pure functions: numbers in, a `FeatureDrift` out. The reference side is always the profile of
docs/design/contracts.md (its sorted ``sample``, its PSI bins, its category ``shares``), never the
raw training data, which the sidecar does not have.

Methods and their default per-feature thresholds follow evidently's (so verdicts can be compared):
- ``ks``: two-sample Kolmogorov-Smirnov p-value; drifted when p < 0.05 (numeric).
- ``wasserstein``: Wasserstein-1 distance divided by the reference std (at least 0.001); drifted
  when >= 0.1 (numeric).
- ``psi``: population stability index over the profile's decile bins (numeric) or the categories;
  drifted when >= 0.1. Empty bins get a tiny share so the logarithm stays finite.
- ``chisquare`` (or ``chi2``): chi-squared goodness of fit of the current counts against the
  reference shares; drifted when p < 0.05. A category the reference never saw gives p = 0.
- ``jensenshannon``: Jensen-Shannon distance (base 2) of the binned shares; drifted when >= 0.1.
- ``z``: two-proportion z-test for a feature with two values; drifted when p < 0.05.
- ``auto``: evidently's default choice. With more than 1000 reference values: Wasserstein for a
  numeric feature with more than 5 distinct values, Jensen-Shannon otherwise. With 1000 or fewer:
  KS for a numeric feature with more than 5 distinct values, else chi-squared (z for two values).

Where evidently uses the full reference we use the profile's sample (at most 5000 values); distinct
values of a numeric reference are counted on that sample.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from scipy import stats
from scipy.spatial import distance

from kubeloop_runtime.drift.errors import DriftInputError
from kubeloop_runtime.profile import bin_counts

METHODS: Final[tuple[str, ...]] = (
    "auto",
    "ks",
    "wasserstein",
    "psi",
    "chisquare",
    "chi2",
    "jensenshannon",
    "z",
)
# The InferenceService spec (monitoring.method) spells chi-squared "chi2".
METHOD_ALIASES: Final[Mapping[str, str]] = {"chi2": "chisquare"}
NUMERIC_METHODS: Final = frozenset({"ks", "wasserstein", "psi", "chisquare", "jensenshannon", "z"})
CATEGORICAL_METHODS: Final = frozenset({"psi", "chisquare", "jensenshannon", "z"})
# Tests whose statistic is a p-value: drifted below the threshold. The others are distances.
P_VALUE_METHODS: Final = frozenset({"ks", "chisquare", "z"})
DEFAULT_THRESHOLDS: Final[Mapping[str, float]] = {
    "ks": 0.05,
    "wasserstein": 0.1,
    "psi": 0.1,
    "chisquare": 0.05,
    "jensenshannon": 0.1,
    "z": 0.05,
}
SMALL_REFERENCE: Final = 1000
FEW_VALUES: Final = 5
JS_VALUE_BINS_UP_TO: Final = 20
WASSERSTEIN_MIN_NORM: Final = 0.001
_EMPTY_SHARE: Final = 1e-4


@dataclass(frozen=True, slots=True)
class FeatureReference:
    """One feature of the reference profile, with its lists turned into arrays once."""

    name: str
    kind: str
    count: int
    std: float
    sample: np.ndarray  # sorted, float64; empty for a categorical feature
    sample_distinct: int
    bin_edges: np.ndarray
    bin_shares: np.ndarray
    shares: Mapping[str, float]

    @classmethod
    def from_profile(cls, name: str, entry: Mapping[str, Any]) -> FeatureReference:
        """Read one ``features`` entry of the profile; refuse one that cannot be tested."""
        kind = entry.get("kind")
        if kind not in ("numeric", "categorical"):
            raise DriftInputError(f"feature {name!r}: profile kind {kind!r} is not known")
        count = int(entry.get("count") or 0)
        if kind == "categorical":
            shares = entry.get("shares")
            if not isinstance(shares, Mapping):
                raise DriftInputError(f"feature {name!r}: the profile has no category shares")
            empty = np.empty(0, dtype=np.float64)
            return cls(name, kind, count, 0.0, empty, len(shares), empty, empty, dict(shares))
        try:
            sample = np.sort(np.asarray(entry.get("sample") or [], dtype=np.float64))
            edges = np.asarray(entry.get("binEdges") or [], dtype=np.float64)
            bin_shares = np.asarray(entry.get("binShares") or [], dtype=np.float64)
            std = float(entry.get("std") or 0.0)
        except (TypeError, ValueError) as error:
            raise DriftInputError(
                f"feature {name!r}: malformed numeric profile ({error})"
            ) from error
        if count > 0 and sample.size == 0:
            raise DriftInputError(f"feature {name!r}: the profile has no reference sample")
        if edges.size >= 2 and bin_shares.size != edges.size - 1:
            raise DriftInputError(f"feature {name!r}: binShares do not match binEdges")
        distinct = int(np.count_nonzero(np.diff(sample)) + 1) if sample.size else 0
        return cls(name, kind, count, std, sample, distinct, edges, bin_shares, {})


def prepare_reference(profile: Mapping[str, Any]) -> dict[str, FeatureReference]:
    """Turn a reference profile (contracts.md) into per-feature references, checked once."""
    features = profile.get("features") if isinstance(profile, Mapping) else None
    if not isinstance(features, Mapping) or not features:
        raise DriftInputError("the reference profile has no 'features'")
    return {
        str(name): FeatureReference.from_profile(str(name), entry)
        for name, entry in features.items()
    }


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """One feature's verdict: which test ran, its statistic, the threshold and the outcome."""

    feature: str
    kind: str
    method: str
    statistic: float
    threshold: float
    drifted: bool
    samples: int


def choose_method(feature: FeatureReference, current: np.ndarray) -> str:
    """Evidently's default test for a feature (see the module docstring)."""
    distinct = _distinct_values(feature, current)
    if feature.count <= SMALL_REFERENCE:
        if feature.kind == "numeric" and distinct > FEW_VALUES:
            return "ks"
        return "chisquare" if distinct > 2 else "z"
    if feature.kind == "numeric" and distinct > FEW_VALUES:
        return "wasserstein"
    return "jensenshannon"


def check_feature(
    feature: FeatureReference,
    current: np.ndarray,
    method: str,
    threshold: float | None = None,
) -> FeatureDrift:
    """Test one feature's current values (nulls already dropped) against its reference.

    ``current`` holds float64 values for a numeric feature and ``str`` objects for a categorical
    one. ``threshold`` overrides the method's default per-feature threshold.
    """
    if current.size == 0:
        raise DriftInputError(f"feature {feature.name!r}: the window holds no values")
    if feature.count == 0:
        raise DriftInputError(f"feature {feature.name!r}: the reference profile holds no values")
    method = METHOD_ALIASES.get(method, method)
    chosen = choose_method(feature, current) if method == "auto" else method
    allowed = NUMERIC_METHODS if feature.kind == "numeric" else CATEGORICAL_METHODS
    if chosen not in allowed:
        raise DriftInputError(
            f"feature {feature.name!r}: method {chosen!r} does not apply to {feature.kind} data"
        )
    if chosen == "psi" and feature.kind == "numeric" and feature.bin_edges.size < 2:
        raise DriftInputError(f"feature {feature.name!r}: the profile has no PSI bins")
    limit = DEFAULT_THRESHOLDS[chosen] if threshold is None else threshold
    statistic = _STATISTICS[chosen](feature, current)
    drifted = statistic < limit if chosen in P_VALUE_METHODS else statistic >= limit
    return FeatureDrift(
        feature=feature.name,
        kind=feature.kind,
        method=chosen,
        statistic=float(statistic),
        threshold=float(limit),
        drifted=bool(drifted),
        samples=int(current.size),
    )


# -- statistics -----------------------------------------------------------------------------------


def ks_p_value(feature: FeatureReference, current: np.ndarray) -> float:
    return float(stats.ks_2samp(feature.sample, current, method="asymp").pvalue)


def wasserstein_normed(feature: FeatureReference, current: np.ndarray) -> float:
    norm = max(feature.std, WASSERSTEIN_MIN_NORM)
    return sorted_wasserstein(feature.sample, np.sort(current)) / norm


def sorted_wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    """Wasserstein-1 distance of two SORTED samples, in its quantile form.

    W1 is the area between the two quantile functions, ``integral over u in [0, 1] of
    |Q_reference(u) - Q_current(u)|``. Both are step functions, constant between the breakpoints
    ``i/n`` and ``j/m``; those depend only on the sample sizes, so the segments are computed once
    per size pair (`_quantile_segments`, cached) and each test is two gathers and a weighted sum:
    no merge, no search over the large side. Equal to scipy's CDF-form
    ``wasserstein_distance``, which evidently uses.
    """
    reference_index, current_index, widths = _quantile_segments(reference.size, current.size)
    gaps = current[current_index]
    gaps -= reference[reference_index]
    np.abs(gaps, out=gaps)
    # Not np.dot: a BLAS dot may wake a thread pool, which costs more than it saves at this size
    # and competes with the model server in the same pod.
    gaps *= widths
    return float(gaps.sum())


@functools.lru_cache(maxsize=4)
def _quantile_segments(n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For samples of sizes n and m: per segment of [0, 1], the order statistic of each sample
    that is the quantile there, and the segment's width.

    Breakpoints are kept as integers in units of 1/(n*m) (``i*m`` and ``j*n``) so that equal
    breakpoints compare equal; both sequences are sorted, so a stable sort merges them in
    linear time.
    """
    starts = np.concatenate([np.arange(n, dtype=np.int64) * m, np.arange(m, dtype=np.int64) * n])
    starts.sort(kind="stable")
    distinct = np.empty(starts.size, dtype=bool)
    distinct[0] = True
    np.not_equal(starts[1:], starts[:-1], out=distinct[1:])
    starts = starts[distinct]
    ends = np.append(starts[1:], n * m)
    widths = (ends - starts) / float(n * m)
    for array in (starts, widths):
        array.flags.writeable = False
    reference_index = starts // m
    current_index = starts // n
    reference_index.flags.writeable = False
    current_index.flags.writeable = False
    return reference_index, current_index, widths


def psi(feature: FeatureReference, current: np.ndarray) -> float:
    if feature.kind == "categorical":
        _, expected, counts = _value_counts(feature, current)
        actual = counts / counts.sum()
    else:
        expected = feature.bin_shares
        actual = bin_counts(current, feature.bin_edges) / current.size
    expected = _fill_empty(expected)
    actual = _fill_empty(actual)
    return float(np.sum((expected - actual) * np.log(expected / actual)))


def chisquare_p_value(feature: FeatureReference, current: np.ndarray) -> float:
    keys, reference_shares, counts = _value_counts(feature, current)
    if len(keys) < 2:
        return 1.0
    expected = reference_shares * counts.sum()
    if np.any((expected == 0) & (counts > 0)):
        return 0.0  # a value the reference never saw
    present = expected > 0
    statistic = float(np.sum((counts[present] - expected[present]) ** 2 / expected[present]))
    return float(stats.chi2.sf(statistic, df=len(keys) - 1))


def jensenshannon_distance(feature: FeatureReference, current: np.ndarray) -> float:
    if feature.kind == "numeric" and feature.sample_distinct > JS_VALUE_BINS_UP_TO:
        reference = feature.sample
        edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
        expected = np.histogram(reference, edges)[0] / reference.size
        actual = np.histogram(current, edges)[0] / current.size
    else:
        _, expected, counts = _value_counts(feature, current)
        actual = counts / counts.sum()
    value = float(distance.jensenshannon(expected, actual, base=2))
    return 0.0 if np.isnan(value) else value


def z_p_value(feature: FeatureReference, current: np.ndarray) -> float:
    keys, reference_shares, counts = _value_counts(feature, current)
    if len(keys) < 2:
        return 1.0
    reference_n = float(feature.count)
    current_n = float(counts.sum())
    p_reference = float(reference_shares[0])
    p_current = float(counts[0] / current_n)
    pooled = (p_reference * reference_n + p_current * current_n) / (reference_n + current_n)
    spread = float(np.sqrt(pooled * (1 - pooled) * (1 / reference_n + 1 / current_n)))
    if spread == 0:
        return 1.0
    z = (p_reference - p_current) / spread
    return float(2 * stats.norm.sf(abs(z)))


_STATISTICS: Final[Mapping[str, Callable[[FeatureReference, np.ndarray], float]]] = {
    "ks": ks_p_value,
    "wasserstein": wasserstein_normed,
    "psi": psi,
    "chisquare": chisquare_p_value,
    "jensenshannon": jensenshannon_distance,
    "z": z_p_value,
}


# -- helpers --------------------------------------------------------------------------------------


def _distinct_values(feature: FeatureReference, current: np.ndarray) -> int:
    if feature.kind == "numeric":
        if feature.sample_distinct > FEW_VALUES:
            return feature.sample_distinct  # the union can only be larger: skip the window
        return int(np.union1d(np.unique(feature.sample), np.unique(current)).size)
    return len(set(feature.shares) | set(np.unique(current).tolist()))


def _value_counts(
    feature: FeatureReference, current: np.ndarray
) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """Keys (reference and current values), reference shares and current counts over them.

    A numeric reference's shares come from its sample: exact when the reference has at most
    `SAMPLE_SIZE` values, which is when value-count tests are chosen by ``auto``.
    """
    reference_map: dict[Any, float]
    if feature.kind == "numeric":
        values, counts = np.unique(feature.sample, return_counts=True)
        reference_map = dict(zip(values.tolist(), (counts / counts.sum()).tolist(), strict=True))
    else:
        reference_map = {str(key): float(share) for key, share in feature.shares.items()}
    current_values, current_counts = np.unique(current, return_counts=True)
    current_map = dict(zip(current_values.tolist(), current_counts.tolist(), strict=True))
    keys = sorted(set(reference_map) | set(current_map))
    reference_shares = np.array([reference_map.get(key, 0.0) for key in keys], dtype=np.float64)
    window_counts = np.array([current_map.get(key, 0) for key in keys], dtype=np.float64)
    return keys, reference_shares, window_counts


def _fill_empty(shares: np.ndarray) -> np.ndarray:
    filled = shares.astype(np.float64, copy=True)
    filled[filled <= 0] = _EMPTY_SHARE
    return filled
