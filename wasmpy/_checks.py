"""Argument checks shared by the public classes: what reaches C is checked here first."""

from __future__ import annotations

from typing import Any, Type, TypeVar

T = TypeVar("T")


def require_instance(value: Any, cls: Type[T], what: str) -> T:
    """``value`` if it is a ``cls``, else TypeError naming ``what``."""
    if not isinstance(value, cls):
        raise TypeError(f"{what} must be a wasmpy.{cls.__name__}, not {type(value).__name__}")
    return value


def require_int(value: Any, what: str, low: int, high: int) -> int:
    """``value`` if it is an int (not a bool) in [low, high]: TypeError or ValueError otherwise."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{what} must be between {low} and {high}, not {value}")
    return value
