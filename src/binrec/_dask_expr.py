"""A ``dask.dataframe.from_map`` expression that knows its partition lengths.

Used by :mod:`binrec.dask` only, and imported only when it builds a
DataFrame: importing this module imports dask.  ``FromMap`` is dask-expr's
expression behind ``dd.from_map``; it is not public API, so ``binrec.dask``
falls back to ``dd.from_map`` (where ``len`` reads the partitions) when this
module cannot be imported.
"""

from __future__ import annotations

from typing import Any

from dask.dataframe.dask_expr._expr import Lengths
from dask.dataframe.dask_expr._expr import Literal as LiteralExpr
from dask.dataframe.dask_expr._reductions import Len
from dask.dataframe.dask_expr.io import FromMap

__all__ = ["CountedFromMap"]


class CountedFromMap(FromMap):  # type: ignore[misc]
    """``from_map`` over record ranges whose counts are known from the file
    sizes: ``len()`` and the partition lengths are answered from the counts,
    as Dask's ``from_pandas`` answers them, without running a task.

    The first iterable holds objects with a ``count`` attribute (binrec.dask's
    ``Partition``); the function must return that many rows for each.
    """

    def _known_lengths(self) -> tuple[int, ...]:
        counts = [p.count for p in self.iterables[0]]
        return tuple(counts[i] for i in self._partitions)

    def _simplify_up(self, parent: Any, dependents: Any) -> Any:
        if isinstance(parent, Lengths):
            return LiteralExpr(self._known_lengths())
        if isinstance(parent, Len):
            return LiteralExpr(sum(self._known_lengths()))
        return super()._simplify_up(parent, dependents)
