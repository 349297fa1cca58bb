"""Deprecated spellings that still work, in one place."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, cast

__all__ = ["renamed_keywords"]

_F = TypeVar("_F", bound=Callable[..., Any])


def renamed_keywords(**renames: str) -> Callable[[_F], _F]:
    """Let callers still pass the old keyword arguments (``old="new"``
    pairs), with a DeprecationWarning naming both; passing an old and its
    new name together is a TypeError."""

    def decorate(func: _F) -> _F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{func.__name__}() got both {old}= and its new name {new}=")
                    warnings.warn(
                        f"{func.__name__}({old}=...) is deprecated: use {new}=", DeprecationWarning, stacklevel=2
                    )
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return cast(_F, wrapper)  # same arguments, same result: functools.wraps types it as _Wrapped

    return decorate
