"""Type stub for the compiled kernels (``_kernels_c.pyx``).

mypy reads this file instead of the extension module, so the package
type-checks the same whether or not the extension is built, and
``_backend`` checks it against the :class:`binrec._kernels.Kernels`
contract.  ``tests/test_typing.py`` runs ``mypy.stubtest`` to keep it in
step with the built module.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ._kernels import FrameSpec, PackSpec
from ._layout import Field, Layout
from ._pickle_scan import Scan

NAME: str
FUSED_PACK: bool
#: row-plan op codes by name (checked against ``binrec._plan.Op``)
OPS: dict[str, int]
#: fused-pack codes by name (checked against ``binrec._kernels.PackKind``)
PACK_KINDS: dict[str, int]

def unpack_rows(layout: Layout, buf: Any, offset: int, count: int, out: np.ndarray, threads: int = 1) -> np.ndarray: ...
def unpack_columns(
    layout: Layout,
    buf: Any,
    offset: int,
    count: int,
    fields: Sequence[Field],
    outs: Sequence[np.ndarray],
    threads: int = 1,
) -> list[np.ndarray]: ...
def pack_rows(
    layout: Layout, arr: np.ndarray, plens: Mapping[str, np.ndarray], target: Any, threads: int = 1
) -> None: ...
def pack_bytes(layout: Layout, arr: np.ndarray, plens: Mapping[str, np.ndarray], threads: int = 1) -> bytes: ...
def pack_columns(layout: Layout, specs: Sequence[PackSpec], threads: int = 1) -> bytes | None: ...
#: text codec codes by name (checked against ``binrec._kernels.TextCodec``)
TEXT_CODECS: dict[str, int]

def decode_text(src: np.ndarray, out: np.ndarray, codec: int, strip: bytes) -> int: ...
def unpack_text_rows(
    layout: Layout,
    buf: Any,
    offset: int,
    count: int,
    out: np.ndarray,
    text: frozenset[str] | set[str],
    codec: int,
    strip: bytes,
) -> tuple[int, str] | None: ...
def text_to_utf8(
    src: np.ndarray, codec: int, strip: bytes, offsets: np.ndarray, data: np.ndarray
) -> tuple[int, int]: ...
#: frame-scan status codes by name (checked against ``binrec._kernels.FrameScan``)
FRAME_SCAN: dict[str, int]

def scan_frames(
    buf: Any,
    start: int,
    count: int,
    psize: int,
    ssize: int,
    length_at: int,
    length_width: int,
    length_signed: bool,
    length_big: bool,
    counted_prefix: int,
    adjust: int,
    max_length: int,
    starts: np.ndarray,
    lengths: np.ndarray,
) -> tuple[int, int, int]: ...
def gather_rows(buf: Any, starts: np.ndarray, size: int, out: np.ndarray) -> np.ndarray: ...
def tally_frames(
    buf: Any,
    start: int,
    count: int,
    spec: FrameSpec,
    keys: np.ndarray,
    sizes: np.ndarray,
    exact: bool,
    skip_unknown: bool,
    counts: np.ndarray,
) -> tuple[int, int, int]: ...
def unpack_frames(
    buf: Any,
    start: int,
    count: int,
    first: int,
    spec: FrameSpec,
    keys: np.ndarray,
    layouts: Sequence[Layout],
    outs: Sequence[np.ndarray],
) -> Sequence[np.ndarray]: ...
def decode_at(
    layout: Layout, buf: Any, starts: np.ndarray, adds: np.ndarray | None, delta: int, out: np.ndarray
) -> np.ndarray: ...
def scan_pickle(
    data: Any, start: int = 0, more: Callable[[], bytes] | None = None, *, collect: bool = False
) -> Scan: ...
