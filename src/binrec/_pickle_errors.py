"""The exceptions of :mod:`binrec.pickling` (one hierarchy for every loader).

``binrec.pickling`` re-exports them; their ``__module__`` is set there, so
they show as ``binrec.pickling.ForbiddenGlobal`` in tracebacks and pickles.
"""

from __future__ import annotations

import pickle


class PickleSecurityError(pickle.UnpicklingError):
    """A pickle was refused by the restricted loader.

    The base of :class:`ForbiddenGlobal`, :class:`ForbiddenOpcode` and
    :class:`LimitExceeded`; a :class:`pickle.UnpicklingError`, so code that
    already catches that keeps working.

    Examples
    --------
    >>> import os, pickle
    >>> from binrec import pickling
    >>> try:
    ...     pickling.safe_loads(pickle.dumps(os.system))
    ... except pickling.PickleSecurityError as exc:
    ...     print(type(exc).__name__, isinstance(exc, pickle.UnpicklingError))
    ForbiddenGlobal True
    """


class ForbiddenGlobal(PickleSecurityError):
    """The pickle names a global outside the allowlist; nothing was called.

    Parameters
    ----------
    module : str
        The module the pickle names.
    name : str
        The qualified name in that module.
    reason : str
        Why it was refused (shown in the message).

    Attributes
    ----------
    module : str
    name : str

    Examples
    --------
    >>> import argparse, pickle
    >>> from binrec import pickling
    >>> payload = pickle.dumps(argparse.Namespace(a=1))
    >>> try:
    ...     pickling.safe_loads(payload)
    ... except pickling.ForbiddenGlobal as exc:
    ...     print(exc.module, exc.name)
    ...     print(exc)
    argparse Namespace
    forbidden global argparse.Namespace: not in the allowlist
    >>> pickling.safe_loads(payload, allow=["argparse.Namespace"])
    Namespace(a=1)
    """

    def __init__(self, module: str, name: str, reason: str = "not in the allowlist") -> None:
        self.module = module
        self.name = name
        super().__init__(f"forbidden global {module}.{name}: {reason}")


class ForbiddenOpcode(PickleSecurityError):
    """The pickle uses an opcode the restricted loader refuses: EXT1/2/4
    (copyreg's extension registry), persistent IDs, BUILD/SETITEM(S)/
    APPEND(S)/ADDITEMS on a global (or on a shared Enum member), or a FRAME
    whose end does not fall on an opcode boundary.

    Examples
    --------
    >>> import io, pickle
    >>> from binrec import pickling
    >>> class ByReference(pickle.Pickler):
    ...     def persistent_id(self, obj):
    ...         return "row-17" if obj == "stored elsewhere" else None
    >>> buf = io.BytesIO()
    >>> ByReference(buf).dump(["stored elsewhere"])
    >>> try:
    ...     pickling.safe_loads(buf.getvalue())
    ... except pickling.ForbiddenOpcode as exc:
    ...     print(exc)
    persistent IDs are refused by the restricted loader
    """


class LimitExceeded(PickleSecurityError):
    """The pickle is larger (or nests deeper) than the caller allowed.

    Examples
    --------
    >>> import pickle
    >>> from binrec import pickling
    >>> try:
    ...     pickling.safe_loads(pickle.dumps([[[1]]]), max_depth=2)
    ... except pickling.LimitExceeded as exc:
    ...     print(exc)
    pickle nests deeper than max_depth=2
    >>> pickling.safe_loads(pickle.dumps([[[1]]]), max_depth=3)
    [[[1]]]
    """


class TruncatedError(pickle.UnpicklingError):
    """A truncated or corrupt pickle (every loader raises this class for
    malformed input, whatever the unpickler's own exception was: that one
    is the ``__cause__``).

    Parameters
    ----------
    offset : int
        Byte offset (from where reading started) of the object that failed.
    index : int
        How many complete objects came before it.
    cause : BaseException, optional
        The unpickler's own exception, named in the message.

    Attributes
    ----------
    offset : int
        Byte offset (from where reading started) of the object that failed.
    index : int
        How many complete objects came before it.

    Examples
    --------
    >>> import io, pickle
    >>> from binrec import pickling
    >>> buf = io.BytesIO()
    >>> pickling.dump_many([1, "two", [3]], buf)
    3
    >>> cut = io.BytesIO(buf.getvalue()[:-3])  # the last object loses its end
    >>> loaded = []
    >>> try:
    ...     for obj in pickling.load_many(cut):
    ...         loaded.append(obj)
    ... except pickling.TruncatedError as exc:
    ...     print(loaded, exc.index, exc.offset)
    ...     print(exc.offset == len(pickle.dumps(1, 5)) + len(pickle.dumps("two", 5)))
    [1, 'two'] 2 23
    True
    """

    def __init__(self, offset: int, index: int, cause: BaseException | None = None) -> None:
        self.offset = offset
        self.index = index
        detail = f": {type(cause).__name__}: {cause}" if cause is not None else ""
        super().__init__(f"truncated or corrupt pickle (object #{index}) at byte offset {offset}{detail}")


class VersionError(ValueError):
    """A versioned file cannot be brought to the requested version.

    A :class:`ValueError`; raised before the payload is unpickled.

    Examples
    --------
    >>> import os, tempfile
    >>> from binrec import pickling
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "settings.pkl")
    ...     pickling.save_versioned(path, {"theme": "dark"}, version=3)
    ...     try:
    ...         pickling.load_versioned(path, current=2)
    ...     except pickling.VersionError as exc:
    ...         print(str(exc).split(": ", 1)[0].endswith("has version 3, newer than the current version 2"))
    True
    """
