"""Pattern embedding: per-feature z-score, then PCA (scikit-learn conventions).

Column policy is explicit: columns containing NaN raise (or are dropped, the paper's
behaviour), and columns of zero (or negligible) variance are dropped (or kept, or raise).
Dropped columns are recorded in `dropped_features_` with the reason.

Two ways to fit: :meth:`PatternEmbedding.fit` (scikit-learn PCA of the whole table in
memory) and :meth:`PatternEmbedding.fit_chunks` (one pass over row chunks accumulating the
exact column means and scatter matrix, then an eigendecomposition of the z-scored
covariance: the same PCA up to rounding, for tables too large to hold; see
benchmarks/large_atlas.py for the measured difference).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA

from ._checks import check_choice, check_float, check_int
from ._checks import checked_weights as checked_weights  # kept here for callers of embed.checked_weights


class PatternEmbedding(TransformerMixin, BaseEstimator):
    """z-score + PCA of a feature table, a scikit-learn estimator (get_params / set_params /
    sklearn.base.clone work; parameters are stored as given and checked in `fit`).

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
            Weights must be finite and >= 0, and not all kept features may weigh 0.

    Attributes (after fit):
        feature_names_in_: all input columns. kept_features_: the columns used.
        dropped_features_: {column: reason}. mean_, scale_: z-score statistics (std ddof=1).
        weights_: [n_kept] weight of each kept feature.
        components_: [n_components_, n_kept] loadings. explained_variance_ /
            explained_variance_ratio_: [n_components_].
        solver_: "sklearn" (fit) or "covariance" (fit_chunks).
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
        self.n_components = n_components
        self.nan_columns = nan_columns
        self.zero_variance = zero_variance
        self.variance_tol = variance_tol
        self.random_state = random_state
        self.weights = weights

    def _checked_params(self) -> dict:
        """The parameters, checked (TypeError / ValueError naming the parameter)."""
        return {
            "n_components": check_int("n_components", self.n_components, minimum=1),
            "nan_columns": check_choice("nan_columns", self.nan_columns, ("error", "drop")),
            "zero_variance": check_choice("zero_variance", self.zero_variance, ("drop", "keep", "error")),
            "variance_tol": check_float("variance_tol", self.variance_tol, minimum=0.0),
            "weights": checked_weights(self.weights, "weights"),
        }

    def _as_array(self, x, names: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
        if isinstance(x, pd.DataFrame):
            return x.to_numpy(dtype=np.float64), [str(c) for c in x.columns]
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim != 2:
            raise ValueError(f"expected a 2-D feature table [rows, features], got shape {arr.shape}")
        return arr, list(names) if names is not None else [f"f{k}" for k in range(arr.shape[1])]

    def fit(self, x, y=None, *, feature_names: Sequence[str] | None = None) -> "PatternEmbedding":
        """Fit on a feature table x [rows, features] (DataFrame or array)."""
        params = self._checked_params()
        arr, names = self._as_array(x, feature_names)
        if arr.shape[0] < 2:
            raise ValueError(f"need at least 2 rows to fit an embedding, got {arr.shape[0]}")
        if np.isinf(arr).any():
            bad = [names[k] for k in np.nonzero(np.isinf(arr).any(0))[0]]
            raise ValueError(f"feature columns {bad[:5]} contain infinite values")
        has_nan = np.isnan(arr).any(0)
        finite = np.where(~has_nan, arr, 0.0)  # NaN columns zeroed; they are dropped anyway
        self._set_columns(params, names, has_nan, finite.mean(0), finite.std(0, ddof=1))
        z = (arr[:, self._keep] - self.mean_) / self.scale_ * self.weights_
        k = min(params["n_components"], z.shape[1], z.shape[0])
        self._pca = PCA(n_components=k, random_state=self.random_state).fit(z)
        self.n_components_ = k
        self.components_ = self._pca.components_
        self.explained_variance_ = self._pca.explained_variance_
        self.explained_variance_ratio_ = self._pca.explained_variance_ratio_
        self.solver_ = "sklearn"
        return self

    def fit_chunks(self, chunks: Iterable, *, feature_names: Sequence[str] | None = None) -> "PatternEmbedding":
        """Fit on a table given as row chunks, in one pass, without holding it.

        Per chunk [r, F] the column means and the centred scatter matrix are merged into the
        running ones (Chan et al.'s pairwise update, exact up to rounding); the z-scored,
        weighted covariance then gives the components by eigendecomposition (signs as
        scikit-learn's: the largest |loading| of each component is positive). Column
        policies, weights and attributes are as for :meth:`fit`; :meth:`transform` projects
        without re-centring (z-scores have mean 0).

        Args:
            chunks: iterable of [rows, F] arrays (DataFrames or arrays, the same columns).
            feature_names: F column names (default: a DataFrame's columns, else f0, f1, ...).
        """
        params = self._checked_params()
        n, mean, scatter, has_nan, names = 0, None, None, None, None
        for chunk in chunks:
            arr, chunk_names = self._as_array(chunk, feature_names)
            if names is None:
                names = chunk_names
                f = arr.shape[1]
                mean, scatter, has_nan = np.zeros(f), np.zeros((f, f)), np.zeros(f, bool)
            elif chunk_names != names:
                raise ValueError("every chunk must have the same feature columns")
            if not len(arr):
                continue
            if np.isinf(arr).any():
                bad = [names[k] for k in np.nonzero(np.isinf(arr).any(0))[0]]
                raise ValueError(f"feature columns {bad[:5]} contain infinite values")
            nan = np.isnan(arr).any(0)
            has_nan |= nan
            if nan.any():
                arr = np.where(nan, 0.0, arr)  # as fit: NaN columns zeroed, dropped anyway
            m = len(arr)
            chunk_mean = arr.mean(0)
            centred = arr - chunk_mean
            delta = chunk_mean - mean
            scatter += centred.T @ centred + np.outer(delta, delta) * (n * m / (n + m))
            mean += delta * (m / (n + m))
            n += m
        if names is None or n < 2:
            raise ValueError(f"need at least 2 rows to fit an embedding, got {n}")
        std = np.sqrt(np.maximum(np.diag(scatter), 0.0) / (n - 1))
        self._set_columns(params, names, has_nan, mean, std)
        factor = self.weights_ / self.scale_
        cov = scatter[np.ix_(self._keep, self._keep)] / (n - 1) * np.outer(factor, factor)
        values, vectors = np.linalg.eigh(cov)  # ascending
        k = min(params["n_components"], len(values), n)
        top = np.argsort(values)[::-1][:k]
        components = vectors[:, top].T  # [k, kept]
        signs = np.sign(components[np.arange(k), np.argmax(np.abs(components), axis=1)])
        components *= np.where(signs == 0, 1.0, signs)[:, None]
        variance = np.maximum(values[top], 0.0)
        self._pca = None
        self.n_components_ = k
        self.components_ = components
        self.explained_variance_ = variance
        self.explained_variance_ratio_ = variance / max(np.maximum(values, 0.0).sum(), 1e-300)
        self.solver_ = "covariance"
        return self

    def _set_columns(self, params: dict, names: list[str], has_nan: np.ndarray, mean: np.ndarray, std: np.ndarray) -> None:
        """Apply the column policy (NaN, zero variance, weights) given each column's NaN flag,
        mean and std (ddof=1, NaN columns zeroed); sets the column attributes."""
        weights = params["weights"]
        dropped: dict[str, str] = {}
        if has_nan.any():
            bad = [names[k] for k in np.nonzero(has_nan)[0]]
            if params["nan_columns"] == "error":
                raise ValueError(
                    f"feature columns {bad[:5]}{' ...' if len(bad) > 5 else ''} contain NaN "
                    "(use nan_columns='drop' to drop such columns as the paper did)"
                )
            dropped.update({b: "contains NaN" for b in bad})
        keep = ~has_nan
        flat = keep & (std <= params["variance_tol"] * np.maximum(np.abs(mean), 1.0))
        if flat.any():
            bad = [names[k] for k in np.nonzero(flat)[0]]
            if params["zero_variance"] == "error":
                raise ValueError(f"feature columns {bad[:5]} have zero variance")
            if params["zero_variance"] == "drop":
                dropped.update({b: "zero variance" for b in bad})
                keep &= ~flat
        if not keep.any():
            raise ValueError("no feature column left after dropping NaN / zero-variance columns")
        unknown = set(weights) - set(names)
        if unknown:
            raise ValueError(f"weights name features {sorted(unknown)[:5]} that are not in the table")
        kept = [n for n, k in zip(names, keep) if k]
        weight_vector = np.array([weights.get(n, 1.0) for n in kept])
        if not weight_vector.sum() > 0:
            raise ValueError(
                f"weights give every kept feature weight 0 ({len(kept)} features): every distance would be 0; "
                "give at least one kept feature a positive weight"
            )
        self.feature_names_in_ = names
        self._keep = keep
        self.kept_features_ = kept
        self.dropped_features_ = dropped
        self.mean_ = mean[keep]
        self.scale_ = np.where(std[keep] > 0, std[keep], 1.0) if params["zero_variance"] == "keep" else std[keep]
        self.weights_ = weight_vector

    def transform(self, x) -> np.ndarray:
        """[rows, n_components_] PCA coordinates of a feature table with the fitted columns."""
        arr, names = self._as_array(x, self.feature_names_in_ if not isinstance(x, pd.DataFrame) else None)
        if names != self.feature_names_in_:
            raise ValueError("feature columns differ from those the embedding was fitted on")
        z = (arr[:, self._keep] - self.mean_) / self.scale_ * self.weights_
        if np.isnan(z).any():
            raise ValueError("feature table has NaN in columns the embedding uses")
        if self._pca is None:  # fitted by fit_chunks: z-scores are centred already
            return z @ self.components_.T
        return self._pca.transform(z)

    def fit_transform(self, x, y=None, *, feature_names: Sequence[str] | None = None) -> np.ndarray:
        return self.fit(x, feature_names=feature_names).transform(x)

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
