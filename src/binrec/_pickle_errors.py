"""The exceptions of :mod:`binrec.pickling` (one hierarchy for every loader).

``binrec.pickling`` re-exports them; their ``__module__`` is set there, so
they show as ``binrec.pickling.ForbiddenGlobal`` in tracebacks and pickles.
"""

from __future__ import annotations

import pickle


class PickleSecurityError(pickle.UnpicklingError):
    """A pickle was refused by the restricted loader."""


class ForbiddenGlobal(PickleSecurityError):
    """The pickle names a global outside the allowlist; nothing was called."""

    def __init__(self, module: str, name: str, reason: str = "not in the allowlist") -> None:
        self.module = module
        self.name = name
        super().__init__(f"forbidden global {module}.{name}: {reason}")


class ForbiddenOpcode(PickleSecurityError):
    """The pickle uses an opcode the restricted loader refuses: EXT1/2/4
    (copyreg's extension registry), persistent IDs, BUILD/SETITEM(S)/
    APPEND(S)/ADDITEMS on a global (or on a shared Enum member), or a FRAME
    whose end does not fall on an opcode boundary."""


class LimitExceeded(PickleSecurityError):
    """The pickle is larger (or nests deeper) than the caller allowed."""


class TruncatedError(pickle.UnpicklingError):
    """A truncated or corrupt pickle (every loader raises this class for
    malformed input, whatever the unpickler's own exception was: that one
    is the ``__cause__``).

    Attributes
    ----------
    offset : int
        Byte offset (from where reading started) of the object that failed.
    index : int
        How many complete objects came before it.
    """

    def __init__(self, offset: int, index: int, cause: BaseException | None = None) -> None:
        self.offset = offset
        self.index = index
        detail = f": {type(cause).__name__}: {cause}" if cause is not None else ""
        super().__init__(f"truncated or corrupt pickle (object #{index}) at byte offset {offset}{detail}")


class VersionError(ValueError):
    """A versioned file cannot be brought to the requested version."""
