"""Pickle persistence done safely.

* :func:`dump_many` / :func:`load_many`: many objects in one file or stream.
* :func:`save_versioned` / :func:`load_versioned`: files that carry a data
  version, upgraded on load through a chain of migrations.
* :func:`safe_loads` / :func:`safe_load`: unpickling restricted to an
  allowlist of exact ``(module, qualname)`` globals, enforced inside
  ``find_class`` (so no pre-scan can be fooled by a parser difference):
  a payload that names anything else raises :class:`ForbiddenGlobal`
  *before* anything is called.
* :func:`inspect`: what a pickle would import and call, read with
  :mod:`pickletools` without executing anything.

The policy (what :func:`safe_loads` admits by default) is
:data:`DEFAULT_ALLOW`: plain data types, ``datetime``, ``decimal``,
``fractions``, ``uuid.UUID``, ``collections`` containers, pure paths and
exactly what numpy needs to rebuild arrays, dtypes and scalars.  Some
modules are never admitted, even when a caller extends the list
(:data:`NEVER_ALLOW`): anything that reaches attributes, imports or runs code.
"""

from __future__ import annotations

from ._pickle_errors import (
    ForbiddenGlobal,
    ForbiddenOpcode,
    LimitExceeded,
    PickleSecurityError,
    TruncatedError,
    VersionError,
)
from ._pickle_inspect import PickleReport, inspect
from ._pickle_policy import ALL, DEFAULT_ALLOW, NEVER_ALLOW
from ._pickle_policy import AllowSpec as AllowSpec  # the type of every allow= argument
from ._pickle_policy import Predicate as Predicate
from ._pickle_restricted import DEFAULT_MAX_BYTES as DEFAULT_MAX_BYTES
from ._pickle_restricted import restricted_loads as restricted_loads  # package-internal: checkpoint
from ._pickle_restricted import safe_load, safe_loads
from ._pickle_stream import dump_many, load_many
from ._pickle_versioned import load_versioned, save_versioned
from ._pickle_versioned import migrate as migrate  # public, not in __all__ (checkpoint uses it)
from ._pickle_versioned import read_version as read_version  # public, not in __all__

# Where each concern lives (this module only gathers them):
#   _pickle_errors      the exception hierarchy
#   _pickle_policy      the allowlist: DEFAULT_ALLOW, NEVER_ALLOW, ALL, allow= parsing
#   _pickle_restricted  the restricted unpickler, safe_loads/safe_load, depth limit
#   _pickle_scan        the opcode scanner (a spec; compiled twin in _codec)
#   _pickle_stream      dump_many/load_many
#   _pickle_versioned   save_versioned/load_versioned/read_version/migrate
#   _pickle_inspect     inspect/PickleReport

__all__ = [
    "ALL",
    "DEFAULT_ALLOW",
    "NEVER_ALLOW",
    "PickleSecurityError",
    "ForbiddenGlobal",
    "ForbiddenOpcode",
    "LimitExceeded",
    "TruncatedError",
    "VersionError",
    "PickleReport",
    "dump_many",
    "load_many",
    "save_versioned",
    "load_versioned",
    "safe_loads",
    "safe_load",
    "inspect",
]

# The public names keep the module users import them from: class reprs,
# tracebacks (binrec.pickling.ForbiddenGlobal), pickles that name them
# (ALL pickles as binrec.pickling.ALL) and doctest, which runs the examples
# of the objects whose __module__ is this one.
for _name in (*__all__, "read_version", "migrate"):
    _obj = globals()[_name]
    if isinstance(_obj, type) or callable(_obj):
        _obj.__module__ = __name__
type(ALL).__module__ = __name__
del _name, _obj
