"""Hypothesis strategies shared by the property-based tests."""

from __future__ import annotations

from hypothesis import assume
from hypothesis import strategies as st

from binrec import Error, Struct

STANDARD = "xcbB?hHiIlLqQefdsp"
NATIVE = STANDARD + "nNP"


@st.composite
def formats(draw, extra: str = ""):
    """(format, Struct) for random struct formats; ``extra`` adds codes
    struct may not know (``FD`` before Python 3.14)."""
    order = draw(st.sampled_from(["", "@", "=", "<", ">", "!"]))
    codes = (NATIVE if order in ("", "@") else STANDARD) + extra
    items = draw(
        st.lists(
            st.tuples(st.sampled_from(codes), st.integers(0, 4), st.booleans()),
            min_size=1,
            max_size=8,
        )
    )
    parts = []
    for code, count, spaced in items:
        if code in "sp":
            count = draw(st.integers(0, 12))
        text = (str(count) if count != 1 or draw(st.booleans()) else "") + code
        parts.append((" " if spaced else "") + text)
    fmt = order + "".join(parts)
    try:
        s = Struct(fmt)
    except Error:
        assume(False)
    return fmt, s
