"""Argument checks shared by every layer: each raises a TypeError / ValueError that names
the argument and says what was expected. A leaf module (imports nothing of the package)."""

from __future__ import annotations

import math
import numbers

import numpy as np


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None, allow_none: bool = False):
    """`value` as an int; bools, floats and strings are refused (TypeError), and ints outside
    [minimum, maximum] are refused (ValueError)."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_float(
    name: str, value, minimum: float | None = None, maximum: float | None = None, allow_none: bool = False
) -> float | None:
    """`value` as a finite float within [minimum, maximum]; NaN, inf, bools and non-numbers refused."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_choice(name: str, value, choices) -> str:
    """`value` if it is one of `choices`, else ValueError listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def checked_weights(weights: dict[str, float] | None, name: str = "feature weights") -> dict[str, float]:
    """Embedding weights {feature: w} as floats; TypeError unless a mapping (or None),
    ValueError unless each is finite and >= 0."""
    if weights is None:
        return {}
    if not hasattr(weights, "items"):
        raise TypeError(f"{name} must be a mapping {{feature: weight}} or None, got {type(weights).__name__}")
    try:
        weights = {k: float(w) for k, w in weights.items()}
    except (TypeError, ValueError):
        raise TypeError(f"{name} must map feature names to numbers, got {dict(weights)!r}") from None
    bad = {k: w for k, w in weights.items() if not (np.isfinite(w) and w >= 0)}
    if bad:
        raise ValueError(f"{name} must be finite and >= 0, got {bad}")
    return weights
