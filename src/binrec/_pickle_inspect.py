"""What a pickle would import and call, read without executing it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _backend, _pickle_scan
from ._pickle_errors import ForbiddenGlobal
from ._pickle_policy import Policy, policy_for
from ._pickle_restricted import mutated_call_problems


@dataclass
class PickleReport:
    """What :func:`inspect` found.

    ``status`` is one of ``"safe"`` (every pickle is well formed and uses
    only allowed globals and opcodes), ``"unsafe"`` (something the
    restricted loader refuses, even if the bytes are malformed further on:
    :func:`pickle.loads` runs every opcode before the first error),
    ``"unreadable"`` (not a well-formed pickle, nothing refused before the
    fault) and ``"empty"`` (no bytes at all).

    Attributes
    ----------
    size : int
        Bytes read.
    protocol : int
        Highest pickle protocol seen.
    pickles : int
        Pickles in the data (a stream may hold several).
    globals : list of (str, str)
        ``(module, qualname)`` of every global named, in order of first use.
    calls : int
        Opcodes that call something (REDUCE, BUILD, NEWOBJ, OBJ, INST...).
    opcodes : dict
        Opcode name -> count.
    offending : list of str
        What the restricted loader would refuse.
    error : str or None
        Why the data is unreadable, if it is.

    Examples
    --------
    >>> import pickle
    >>> from binrec import pickling
    >>> report = pickling.inspect(pickle.dumps({"a": [1, 2]}, protocol=2))
    >>> report.status, report.pickles, report.protocol, report.globals
    ('safe', 1, 2, [])
    """

    size: int
    protocol: int
    pickles: int
    globals: list[tuple[str, str]] = field(default_factory=list)
    calls: int = 0
    opcodes: dict[str, int] = field(default_factory=dict)
    offending: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def status(self) -> str:
        """``"safe"``, ``"unsafe"``, ``"unreadable"`` or ``"empty"``.

        Unsafe wins over unreadable: a pickle that names a forbidden global
        before its bytes go bad is unsafe, since :func:`pickle.loads` would
        have called it before failing.

        Returns
        -------
        str

        Examples
        --------
        >>> import os, pickle
        >>> from binrec import pickling
        >>> [pickling.inspect(data).status for data in (pickle.dumps(1), pickle.dumps(os.system), b"\\x80\\x05K", b"")]
        ['safe', 'unsafe', 'unreadable', 'empty']
        """
        if self.offending:
            return "unsafe"
        if self.error is not None:
            return "unreadable"
        if self.size == 0:
            return "empty"
        return "safe"

    @property
    def safe(self) -> bool:
        """Whether :attr:`status` is ``"safe"``.

        Returns
        -------
        bool

        Examples
        --------
        >>> import os, pickle
        >>> from binrec import pickling
        >>> pickling.inspect(pickle.dumps([1.5, "x"])).safe, pickling.inspect(pickle.dumps(os.system)).safe
        (True, False)
        """
        return self.status == "safe"

    @property
    def verdict(self) -> str:
        """One line for people: the status, and what was refused or why the
        data is unreadable.

        Returns
        -------
        str

        Examples
        --------
        >>> import argparse, pickle
        >>> from binrec import pickling
        >>> pickling.inspect(pickle.dumps(argparse.Namespace(a=1))).verdict
        'unsafe: argparse.Namespace'
        >>> pickling.inspect(b"\\x80\\x05K").verdict
        'unreadable: Malformed: pickle data was truncated (at byte 3)'
        """
        status = self.status
        if status == "unsafe":
            tail = f" (then unreadable: {self.error})" if self.error is not None else ""
            return "unsafe: " + ", ".join(self.offending) + tail
        if status == "unreadable":
            return f"unreadable: {self.error}"
        if status == "empty":
            return "empty: no pickle in 0 bytes"
        return "safe"

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data (``binrec pickle inspect --json``).

        Returns
        -------
        dict
            The fields, plus ``safe``, ``status`` and ``verdict``; globals as
            ``"module.qualname"`` strings.

        Examples
        --------
        >>> import argparse, json, pickle
        >>> from binrec import pickling
        >>> d = pickling.inspect(pickle.dumps(argparse.Namespace(a=1), protocol=2)).as_dict()
        >>> d["globals"], d["status"], d["offending"]
        (['argparse.Namespace'], 'unsafe', ['argparse.Namespace'])
        >>> json.loads(json.dumps(d)) == d
        True
        """
        return {
            "size": self.size,
            "protocol": self.protocol,
            "pickles": self.pickles,
            "globals": [f"{m}.{n}" for m, n in self.globals],
            "calls": self.calls,
            "opcodes": self.opcodes,
            "safe": self.safe,
            "status": self.status,
            "verdict": self.verdict,
            "offending": self.offending,
            "error": self.error,
        }


def inspect(data_or_path: bytes | bytearray | memoryview | str | os.PathLike[str]) -> PickleReport:
    """Report what a pickle (or a stream of them) would import and call,
    without executing it.

    The opcodes are read as the unpickler reads them (a FRAME whose end
    falls inside an opcode, which would make a stream unpickler run other
    opcodes than a linear reader sees, is reported as unsafe and ends the
    reading).  Only modules of allowed globals are imported, to tell an
    Enum (whose members BUILD must not modify) from other classes.

    Parameters
    ----------
    data_or_path : bytes-like or path
        The pickle bytes, or a file holding them.

    Returns
    -------
    PickleReport

    Examples
    --------
    >>> import collections, pickle
    >>> from binrec import pickling
    >>> report = pickling.inspect(pickle.dumps(collections.OrderedDict(a=1)))
    >>> report.globals, report.verdict
    ([('collections', 'OrderedDict')], 'safe')
    >>> pickling.inspect(b"").status
    'empty'
    """
    if isinstance(data_or_path, (str, os.PathLike)):
        data = Path(data_or_path).read_bytes()
    else:
        data = bytes(data_or_path)
    report = PickleReport(size=len(data), protocol=0, pickles=0)
    seen: set[tuple[str, str]] = set()
    counts = [0] * 256
    pol = policy_for(None)
    pos = 0
    while pos < len(data):
        report.pickles += 1
        try:
            scan = _backend.scan_pickle(data, pos, collect=True)
        except (_pickle_scan.Malformed, _pickle_scan.FrameMismatch) as exc:
            _add_scan(report, exc.partial, seen, counts, pol)
            if isinstance(exc, _pickle_scan.FrameMismatch):
                report.offending.append(f"frame trick: {exc}")
            else:
                report.error = f"{type(exc).__name__}: {exc}"
            break
        _add_scan(report, scan, seen, counts, pol)
        pos = scan.end
    report.opcodes = {_pickle_scan.NAMES[code]: k for code, k in enumerate(counts) if k}
    report.calls = sum(counts[code] for code in _pickle_scan.CALL_OPS)
    bad_globals = []
    for module, name in report.globals:
        try:
            pol.check(module, name)
        except ForbiddenGlobal:
            bad_globals.append(f"{module}.{name}")
    report.offending[:0] = bad_globals
    return report


def _add_scan(
    report: PickleReport, scan: _pickle_scan.Scan, seen: set[tuple[str, str]], counts: list[int], pol: Policy
) -> None:
    report.protocol = max(report.protocol, scan.protocol)
    for module, name in scan.globals:
        key = (module or "<computed>", name or "<computed>")
        if key not in seen:
            seen.add(key)
            report.globals.append(key)
    for code, k in enumerate(scan.counts):
        counts[code] += k
    report.offending.extend(str(r) for r in scan.refusals)
    try:
        report.offending.extend(mutated_call_problems(scan, pol))
    except ForbiddenGlobal:
        pass  # the global itself is reported as offending
