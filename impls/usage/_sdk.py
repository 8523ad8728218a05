"""Shared by the SDK adapters: turn a pydantic validation error into the documented UsageError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from reference.usage import UsageError

T = TypeVar("T")


def validated(build: Callable[[], T], prefix: str) -> T:
    import pydantic

    try:
        return build()
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        field = ".".join([prefix, *map(str, first["loc"])])
        raise UsageError(field, f"{first['msg']} (SDK validation)") from None
    except (TypeError, AttributeError, KeyError) as err:
        raise UsageError(prefix, f"not a usage object: {err}") from None


def body_usage(body: Any, key: str, path: str) -> Any:
    if not isinstance(body, dict):
        raise UsageError(path, f"must be an object; got {type(body).__name__}")
    return body.get(key)


def count(value: Any, field: str) -> int:
    """The SDK types accept what they coerce; a count must still end up a non-negative int."""
    if value is None:
        return 0
    if type(value) is not int or value < 0:
        raise UsageError(field, f"must be a non-negative int after SDK parsing; got {value!r}")
    return value
