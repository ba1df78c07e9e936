"""Pattern embedding: per-feature z-score, then PCA (scikit-learn conventions).

Column policy is explicit: columns containing NaN raise (or are dropped, the paper's
behaviour), and columns of zero (or negligible) variance are dropped (or kept, or raise).
Dropped columns are recorded in `dropped_features_` with the reason.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA


def checked_weights(weights: dict[str, float] | None) -> dict[str, float]:
    """Embedding weights {feature: w} as floats; ValueError unless each is finite and >= 0."""
    weights = {k: float(w) for k, w in (weights or {}).items()}
    bad = {k: w for k, w in weights.items() if not (np.isfinite(w) and w >= 0)}
    if bad:
        raise ValueError(f"feature weights must be finite and >= 0, got {bad}")
    return weights


class PatternEmbedding:
    """z-score + PCA of a feature table.

    Args:
        n_components: number of principal components (16 as in the paper); capped at the
            number of kept features and rows.
        nan_columns: "error" (default) raises ValueError naming columns with NaN;
            "drop" drops them (the reference drops a column with a single NaN).
        zero_variance: "drop" (default), "keep" (scaled by 1, i.e. a column of zeros), or
            "error", for columns whose std <= variance_tol * max(|mean|, 1).
        variance_tol: relative tolerance of the zero-variance test; 0 means exactly constant
            (the reference's filter).
        random_state: passed to sklearn PCA.
        weights: optional embedding weight per feature ({name: w}, default 1): z-scores are
            multiplied by it before PCA, so a feature counts that much in distances. A
            feature set's own weights (FeatureSet.weights) are what Atlas passes here.

    Attributes (after fit):
        feature_names_in_: all input columns. kept_features_: the columns used.
        dropped_features_: {column: reason}. mean_, scale_: z-score statistics (std ddof=1).
        components_: [n_components_, n_kept] loadings. explained_variance_ratio_: [n_components_].
    """

    def __init__(
        self,
        n_components: int = 16,
        nan_columns: str = "error",
        zero_variance: str = "drop",
        variance_tol: float = 1e-9,
        random_state: int = 0,
        weights: dict[str, float] | None = None,
    ):
        if nan_columns not in ("error", "drop"):
            raise ValueError(f"nan_columns must be 'error' or 'drop', got {nan_columns!r}")
        if zero_variance not in ("drop", "keep", "error"):
            raise ValueError(f"zero_variance must be 'drop', 'keep' or 'error', got {zero_variance!r}")
        if n_components < 1:
            raise ValueError(f"n_components must be >= 1, got {n_components}")
        self.n_components = n_components
        self.nan_columns = nan_columns
        self.zero_variance = zero_variance
        self.variance_tol = variance_tol
        self.random_state = random_state
        self.weights = checked_weights(weights)

    def _as_array(self, x, names: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
        if isinstance(x, pd.DataFrame):
            return x.to_numpy(dtype=np.float64), [str(c) for c in x.columns]
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim != 2:
            raise ValueError(f"expected a 2-D feature table [rows, features], got shape {arr.shape}")
        return arr, list(names) if names is not None else [f"f{k}" for k in range(arr.shape[1])]

    def fit(self, x, feature_names: Sequence[str] | None = None) -> "PatternEmbedding":
        """Fit on a feature table x [rows, features] (DataFrame or array)."""
        arr, names = self._as_array(x, feature_names)
        if arr.shape[0] < 2:
            raise ValueError(f"need at least 2 rows to fit an embedding, got {arr.shape[0]}")
        if np.isinf(arr).any():
            bad = [names[k] for k in np.nonzero(np.isinf(arr).any(0))[0]]
            raise ValueError(f"feature columns {bad[:5]} contain infinite values")
        dropped: dict[str, str] = {}
        has_nan = np.isnan(arr).any(0)
        if has_nan.any():
            bad = [names[k] for k in np.nonzero(has_nan)[0]]
            if self.nan_columns == "error":
                raise ValueError(
                    f"feature columns {bad[:5]}{' ...' if len(bad) > 5 else ''} contain NaN "
                    "(use nan_columns='drop' to drop such columns as the paper did)"
                )
            dropped.update({b: "contains NaN" for b in bad})
        keep = ~has_nan
        finite = np.where(keep, arr, 0.0)  # NaN columns zeroed; they are dropped anyway
        mean, std = finite.mean(0), finite.std(0, ddof=1)
        flat = keep & (std <= self.variance_tol * np.maximum(np.abs(mean), 1.0))
        if flat.any():
            bad = [names[k] for k in np.nonzero(flat)[0]]
            if self.zero_variance == "error":
                raise ValueError(f"feature columns {bad[:5]} have zero variance")
            if self.zero_variance == "drop":
                dropped.update({b: "zero variance" for b in bad})
                keep &= ~flat
        if not keep.any():
            raise ValueError("no feature column left after dropping NaN / zero-variance columns")
        self.feature_names_in_ = names
        self._keep = keep
        self.kept_features_ = [n for n, k in zip(names, keep) if k]
        self.dropped_features_ = dropped
        self.mean_ = mean[keep]
        unknown = set(self.weights) - set(names)
        if unknown:
            raise ValueError(f"weights name features {sorted(unknown)[:5]} that are not in the table")
        self.scale_ = np.where(std[keep] > 0, std[keep], 1.0) if self.zero_variance == "keep" else std[keep]
        self.weights_ = np.array([self.weights.get(n, 1.0) for n in self.kept_features_])
        z = (arr[:, keep] - self.mean_) / self.scale_ * self.weights_
        k = min(self.n_components, z.shape[1], z.shape[0])
        self._pca = PCA(n_components=k, random_state=self.random_state).fit(z)
        self.n_components_ = k
        self.components_ = self._pca.components_
        self.explained_variance_ratio_ = self._pca.explained_variance_ratio_
        return self

    def transform(self, x) -> np.ndarray:
        """[rows, n_components_] PCA coordinates of a feature table with the fitted columns."""
        arr, names = self._as_array(x, self.feature_names_in_ if not isinstance(x, pd.DataFrame) else None)
        if names != self.feature_names_in_:
            raise ValueError("feature columns differ from those the embedding was fitted on")
        z = (arr[:, self._keep] - self.mean_) / self.scale_ * self.weights_
        if np.isnan(z).any():
            raise ValueError("feature table has NaN in columns the embedding uses")
        return self._pca.transform(z)

    def fit_transform(self, x, feature_names: Sequence[str] | None = None) -> np.ndarray:
        return self.fit(x, feature_names).transform(x)

    def loadings(self) -> pd.DataFrame:
        """[kept features, components] PCA loadings (rows of components_ as columns pc.i)."""
        return pd.DataFrame(
            self.components_.T, index=self.kept_features_, columns=[f"pc.{i}" for i in range(self.n_components_)]
        )

    def importance(self) -> pd.DataFrame:
        """Feature importance: mean / max of |loading| over components and the sum of
        |loading| weighted by explained variance ratio (sorted, most important first)."""
        a = np.abs(self.components_)
        table = pd.DataFrame(
            {
                "mean_abs_loading": a.mean(0),
                "max_abs_loading": a.max(0),
                "weighted_importance": self.explained_variance_ratio_ @ a,
            },
            index=self.kept_features_,
        )
        return table.sort_values("weighted_importance", ascending=False)
