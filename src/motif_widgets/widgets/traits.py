"""Trait types of the widgets: numpy arrays synced as binary buffers, bounded numbers, and
the error of a refused trait value."""

from __future__ import annotations

import functools
import math

import numpy as np
import traitlets

from ._serialization import WIRE_DTYPES, array_from_json, array_to_json


class InvalidTraitValue(traitlets.TraitError, ValueError):
    """A refused trait value. A ValueError for callers; a TraitError for traitlets, which then
    rolls back every trait set in the same batch (a browser update, ``hold_trait_notifications``)."""


def refuses_bad_values(validator):
    """Decorate a cross-validator (``@traitlets.validate``) so that its ValueErrors become
    InvalidTraitValue. Only for checks that depend on the data (a head of this atlas, a layer
    it has); fixed ranges are bounded traits (``Int(16, min=16, max=256)``)."""

    @functools.wraps(validator)
    def checked(self, proposal):
        try:
            return validator(self, proposal)
        except InvalidTraitValue:
            raise
        except ValueError as err:
            raise InvalidTraitValue(str(err)) from err

    return checked


class NDArray(traitlets.TraitType):
    """A numpy array of given dtype(s) (and optionally number of dimensions), synced to the
    browser as a binary buffer ``{dtype, shape, data}``.

    An array of one of the allowed dtypes is kept as it is; others are converted to the first
    allowed dtype when that loses nothing essential (same kind, integers within range).
    Values are stored read-only, so an in-place edit cannot silently diverge from what the
    browser shows. Anything else raises a ValueError that says what was expected.
    """

    info_text = "a numpy array"

    def __init__(self, dtype: str | tuple[str, ...], ndim: int | None = None, allow_none: bool = True, **kwargs):
        dtypes = (dtype,) if isinstance(dtype, str) else tuple(dtype)
        bad = [d for d in dtypes if d not in WIRE_DTYPES]
        if bad or not dtypes:
            raise ValueError(f"NDArray dtypes must be among {WIRE_DTYPES}, got {dtype!r}")
        super().__init__(default_value=None, allow_none=allow_none, **kwargs)
        self.dtypes = tuple(np.dtype(d) for d in dtypes)
        self.dtype = self.dtypes[0]
        self.ndim = ndim
        self.tag(to_json=array_to_json, from_json=array_from_json)

    def validate(self, obj, value):
        try:
            return self._convert(value)
        except InvalidTraitValue:
            raise
        except ValueError as err:
            raise InvalidTraitValue(str(err)) from err

    def _convert(self, value):
        if value is None:
            if self.allow_none:
                return None
            raise ValueError(f"{self.name} must be an array, not None")
        arr = np.asarray(value)
        if self.ndim is not None and arr.ndim != self.ndim:
            raise ValueError(f"{self.name} must have {self.ndim} dimensions, got shape {arr.shape}")
        target = arr.dtype if arr.dtype in self.dtypes else self.dtype
        if arr.dtype != target:
            expected = " or ".join(d.name for d in self.dtypes)
            if arr.dtype.kind not in "biuf" or (target.kind in "iu" and arr.dtype.kind == "f"):
                raise ValueError(f"{self.name} must be {expected} (got {arr.dtype})")
            if target.kind in "iu" and arr.size:
                info = np.iinfo(target)
                if arr.min() < info.min or arr.max() > info.max:
                    raise ValueError(f"{self.name} values {arr.min()}..{arr.max()} do not fit {target}")
        arr = np.ascontiguousarray(arr, dtype=target)
        if arr is value:
            arr = arr.copy()
        arr.flags.writeable = False
        return arr

    def make_dynamic_default(self):
        return None


class _RefusesWithValueError:
    """Mixin for traitlets types: a value of the wrong type raises InvalidTraitValue."""

    def error(self, obj, value, error=None, info=None):
        try:
            super().error(obj, value, error, info)
        except InvalidTraitValue:
            raise
        except traitlets.TraitError as err:
            raise InvalidTraitValue(str(err)) from None


class Enum(_RefusesWithValueError, traitlets.Enum):
    """traitlets.Enum whose refusals are ValueErrors too."""


class _Bounded(_RefusesWithValueError):
    """Mixin for traitlets.Int / Float with optional ``min`` / ``max``: bools are refused,
    numpy scalars accepted, and a refusal says the trait's name and range,
    e.g. "cell_size must be in 16..256, got 4" (an InvalidTraitValue)."""

    _range_sep = ".."

    def _expected(self) -> str:
        lo, hi = self.min, self.max
        if lo is not None and hi is not None:
            return f"in {lo}{self._range_sep}{hi}"
        if lo is not None:
            return f">= {lo}"
        return f"<= {hi}" if hi is not None else ""

    def validate(self, obj, value):
        if isinstance(value, (bool, np.bool_)):
            self.error(obj, value)
        if isinstance(value, (np.integer, np.floating)):
            value = value.item()
        try:
            return super().validate(obj, value)
        except InvalidTraitValue:
            raise
        except traitlets.TraitError:  # traitlets' bounds check
            raise InvalidTraitValue(f"{self.name} must be {self._expected()}, got {value!r}") from None


class Int(_Bounded, traitlets.Int):
    """traitlets.Int whose refusals are ValueErrors too; ``min`` / ``max`` bound it."""


class Float(_Bounded, traitlets.Float):
    """traitlets.Float whose refusals are ValueErrors too; ``min`` / ``max`` bound it, and
    NaN and infinities are refused (a NaN passes any bounds check)."""

    def _expected(self) -> str:
        if self.min is not None and self.max is not None:
            return f"a finite number in [{self.min}, {self.max}]"
        return " ".join(["a finite number", super()._expected()]).strip()

    def validate(self, obj, value):
        value = super().validate(obj, value)
        if not math.isfinite(value):
            raise InvalidTraitValue(f"{self.name} must be {self._expected()}, got {value!r}")
        return value


class Unicode(_RefusesWithValueError, traitlets.Unicode):
    """traitlets.Unicode whose refusals are ValueErrors too."""


class AnyButNone(traitlets.Any):
    """traitlets.Any that refuses None (traitlets.Any ignores ``allow_none=False``): a
    cross-validator then checks the rest. ``expected`` says what to give instead."""

    allow_none = False

    def __init__(self, default_value=traitlets.Undefined, expected: str = "not None", **kwargs):
        super().__init__(default_value, **kwargs)
        self.expected = expected

    def validate(self, obj, value):
        if value is None:
            raise InvalidTraitValue(f"{self.name} must be {self.expected}, got None")
        return value
