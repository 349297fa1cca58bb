"""Exception hierarchy for the record codec.

Kept in a pure-Python module of its own so that ``except binrec.Error``
works the same whichever backend (compiled or Python) raised it.
"""

from __future__ import annotations

import struct

__all__ = ["Error"]


class Error(struct.error):
    """Raised for a bad format, a bad buffer length/offset/count, or a value
    that cannot be packed.

    A subclass of :class:`struct.error`, so code that already catches
    ``struct.error`` keeps working.  Messages name the field (and, when
    packing, the row) that was wrong.
    """
