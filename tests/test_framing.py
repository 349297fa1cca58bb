"""binrec.Framing: framed record streams against independent readers.

Oracles: a plain :mod:`struct` loop over the same bytes (random framings,
ITCH 5.0), dpkt's pcap reader (files written by dpkt's pcap writer), and
TensorFlow's published TFRecord framing implemented here with struct +
google-crc32c.  Every test runs once per backend (the ``backend`` fixture):
the tally, scan and decode walks are the chosen kernels' (compiled, or
the Python loops that are their specification).
"""

from __future__ import annotations

import io
import json
import random
import struct
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import binrec
from binrec import Error, Framing

pytestmark = pytest.mark.usefixtures("backend")

HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def without_frame(rows: np.ndarray) -> list[tuple]:
    return [tuple(r)[:-1] for r in rows.tolist()]


# -- differential: random framings against a plain struct loop -----------------

BODY_FORMATS = ["hI", "q", "B", "HHb", "iiii", "Q", "bb", "I"]


def struct_loop(raw: bytes, order: str, length_code: str, tag_code: str, counts_from: int | None, adjust: int,
                formats: dict[int, str]) -> list[tuple[int, int, tuple]]:  # fmt: skip
    """The oracle: (frame number, tag, body values) by struct.unpack_from."""
    prefix = struct.Struct(order + length_code + tag_code)
    out, pos, n = [], 0, 0
    while pos < len(raw):
        length, tag = prefix.unpack_from(raw, pos)
        counted = prefix.size - (prefix.size if counts_from is None else counts_from)
        body_len = length + adjust - counted
        body = struct.Struct(order + formats[tag])
        out.append((n, tag, body.unpack_from(raw, pos + prefix.size)))
        pos += prefix.size + body_len
        n += 1
    return out


@st.composite
def framed_streams(draw):
    order = draw(st.sampled_from("<>="))
    length_code = draw(st.sampled_from("BHIQ"))
    tag_code = draw(st.sampled_from("BhI"))
    psize = struct.calcsize(order + length_code + tag_code)
    counts_from = draw(st.sampled_from([None, 0, psize, struct.calcsize(order + length_code)]))
    adjust = draw(st.integers(-3, 3))
    chosen = draw(st.lists(st.sampled_from(BODY_FORMATS), min_size=1, max_size=4, unique=True))
    formats = dict(enumerate(chosen, start=1))
    frames = []
    for _ in range(draw(st.integers(0, 25))):
        tag = draw(st.sampled_from(sorted(formats)))
        fmt = order + formats[tag]
        values = [draw(st.integers(0, 100)) for _ in struct.unpack(fmt, bytes(struct.calcsize(fmt)))]
        frames.append((tag, struct.pack(fmt, *values)))
    raw = bytearray()
    counted_prefix = 0 if counts_from is None else psize - counts_from
    for tag, body in frames:
        length = len(body) + counted_prefix - adjust
        if length < 0:
            continue  # a body this short cannot be framed with this adjust
        raw += struct.pack(order + length_code + tag_code, length, tag) + body
    return order, length_code, tag_code, counts_from, adjust, formats, bytes(raw)


@HYPOTHESIS
@given(framed_streams())
def test_unpack_matches_a_struct_loop(stream):
    order, length_code, tag_code, counts_from, adjust, formats, raw = stream
    expected = struct_loop(raw, order, length_code, tag_code, counts_from, adjust, formats)
    framing = Framing(order + length_code + tag_code, length=0, tag=1, counts_from=counts_from, adjust=adjust,
                      formats={k: order + v for k, v in formats.items()})  # fmt: skip
    tables = framing.unpack(raw)
    got = sorted((int(row[-1]), tag, tuple(row)[:-1]) for tag, rows in tables.items() for row in rows.tolist())
    assert got == expected
    assert sum(len(rows) for rows in tables.values()) == len(expected)
    for rows in tables.values():
        assert rows.dtype.names[-1] == "_frame" and rows.dtype["_frame"] == np.int64


@HYPOTHESIS
@given(framed_streams())
def test_scan_matches_a_struct_loop(stream):
    order, length_code, tag_code, counts_from, adjust, formats, raw = stream
    prefix = struct.Struct(order + length_code + tag_code)
    counted_prefix = 0 if counts_from is None else prefix.size - counts_from
    starts, lengths, tags, pos = [], [], [], 0
    while pos < len(raw):  # the oracle: struct.unpack_from, frame by frame
        length, tag = prefix.unpack_from(raw, pos)
        starts.append(pos + prefix.size)
        lengths.append(length + adjust - counted_prefix)
        tags.append(tag)
        pos += prefix.size + lengths[-1]
    if any(n < 0 for n in lengths) or pos != len(raw):
        return
    index = Framing(prefix.format, names="n t", length="n", counts_from=counts_from, adjust=adjust).scan(raw)
    assert index.offsets.tolist() == starts and index.lengths.tolist() == lengths
    assert index.prefix["t"].tolist() == tags and len(index) == len(starts)
    assert [bytes(index.body(i)) for i in range(len(index))] == [raw[s : s + n] for s, n in zip(starts, lengths)]


def test_without_tag_one_format_gives_one_array():
    # oracle: struct.iter_unpack over the bodies, which are all "<hh"
    bodies = [struct.pack("<hh", i, -i) for i in range(5)]
    raw = b"".join(struct.pack("<B", 4) + b for b in bodies)
    rows = Framing("<B", length=0, formats="<hh").unpack(raw)
    assert without_frame(rows) == [struct.unpack("<hh", b) for b in bodies]
    assert rows["_frame"].tolist() == list(range(5))


def test_offset_skips_a_file_header():
    raw = b"HEADER" + struct.pack("<B", 1) + b"z"
    assert bytes(Framing("<B", length=0).scan(raw, offset=6).body(0)) == b"z"


def test_count_stops_after_that_many_frames():
    raw = (struct.pack("<B", 1) + b"a") * 3 + b"\xff"  # trailing garbage after frame 3
    index = Framing("<B", length=0).scan(raw, count=3)
    assert len(index) == 3 and index.end == 6


def test_suffix_is_read_after_each_body():
    raw = b"".join(struct.pack("<B", len(b)) + b + struct.pack("<H", 1000 + i) for i, b in enumerate([b"ab", b"c"]))
    index = Framing("<B", length=0, suffix="<H").scan(raw)
    assert index.suffix["f0"].tolist() == [1000, 1001]
    assert index.lengths.tolist() == [2, 1]


def test_body_is_a_view_not_a_copy():
    raw = bytearray(struct.pack("<B", 2) + b"ab")
    body = Framing("<B", length=0).scan(raw).body(0)
    raw[1] = ord("X")  # the oracle: the view sees a write to the buffer
    assert bytes(body) == b"Xb"


def test_extra_ignore_decodes_the_leading_part():
    raw = struct.pack("<B", 6) + struct.pack("<hh", 7, 8) + b"zz"
    rows = Framing("<B", length=0, formats="<hh", extra="ignore").unpack(raw)
    assert without_frame(rows) == [(7, 8)]


def test_unknown_skip_drops_frames_without_a_format():
    raw = struct.pack("<BB", 1, 1) + b"a" + struct.pack("<BB", 1, 9) + b"b" + struct.pack("<BB", 1, 1) + b"c"
    tables = Framing("<BB", length=0, tag=1, formats={1: "c"}).unpack(raw, unknown="skip")
    assert list(tables) == [1] and tables[1].tolist() == [(b"a", 0), (b"c", 2)]


def test_a_zero_byte_tag_of_a_c_field_is_b_nul():
    raw = struct.pack("<Bc", 1, b"\0") + b"\x05"
    assert Framing("<Bc", length=0, tag=1, formats={b"\0": "B"}).unpack(raw)[b"\0"].tolist() == [(5, 0)]


def test_to_arrow_has_prefix_columns_and_bodies():
    pa = pytest.importorskip("pyarrow")
    bodies = [b"ab", b"", b"xyz"]
    raw = b"".join(struct.pack(">H", len(b)) + b for b in bodies)
    table = Framing(">H", names="n", length="n").scan(raw).to_arrow()
    assert table.schema.field("body").type == pa.binary()
    assert table.to_pydict() == {"n": [2, 0, 3], "body": bodies}


def test_to_arrow_past_the_binary_limit_is_large_binary(monkeypatch):
    # Arrow's binary has 32-bit offsets: past 2 GiB of bodies the column is
    # large_binary.  Without allocating 2 GiB: the limit (framing._LARGE_BINARY)
    # is lowered to 6 bytes, and the 7 bytes of bodies cross it.
    pa = pytest.importorskip("pyarrow")
    from binrec import framing

    monkeypatch.setattr(framing, "_LARGE_BINARY", 6)
    bodies = [b"ab", b"", b"xyz", b"q!"]  # the oracle: the bodies themselves
    raw = b"".join(struct.pack(">H", len(b)) + b for b in bodies)
    table = Framing(">H", names="n", length="n").scan(raw).to_arrow()
    assert table.schema.field("body").type == pa.large_binary()
    assert table.to_pydict() == {"n": [2, 0, 3, 2], "body": bodies}
    monkeypatch.setattr(framing, "_LARGE_BINARY", 8)
    assert Framing(">H", length=0).scan(raw).to_arrow().schema.field("body").type == pa.binary()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bodies=st.lists(st.binary(max_size=12), max_size=20), group=st.integers(1, 16))
def test_to_arrow_bodies_gathered_in_groups(bodies, group):
    # the oracle: the bodies themselves, whatever the group size of the gather
    pytest.importorskip("pyarrow")
    from binrec import framing

    raw = b"".join(struct.pack(">H", len(b)) + b for b in bodies)
    saved = framing._VARLEN_GROUP
    framing._VARLEN_GROUP = group
    try:
        table = Framing(">H", length=0).scan(raw).to_arrow()
    finally:
        framing._VARLEN_GROUP = saved
    assert table.column("body").to_pylist() == bodies


def test_json_round_trip_keeps_every_setting():
    f = Framing(">Hc", names="n t", length="n", counts_from=2, adjust=1, tag="t",
                formats={b"A": binrec.Struct(">HI", "a b"), b"B": ">q"}, suffix="<I", max_length=99, extra="ignore")  # fmt: skip
    back = Framing.from_json(f.to_json())
    assert back.to_json() == f.to_json()
    doc = json.loads(f.to_json())
    assert doc["formats"]["A"] == {"format": ">HI", "names": ["a", "b"]} and doc["counts_from"] == 2


def test_json_integer_tags_round_trip():
    f = Framing("<BB", length=0, tag=1, formats={7: "<h"})
    raw = struct.pack("<BBh", 2, 7, -5)
    assert Framing.from_json(f.to_json()).unpack(raw)[7].tolist() == [(-5, 0)]


# -- real-world formats ----------------------------------------------------------

#: NASDAQ TotalView-ITCH 5.0: fields after the type byte (message size includes it)
ITCH = {
    b"S": (12, ">HH6sc"),
    b"R": (39, ">HH6s8sccIcc2scccccIc"),
    b"A": (36, ">HH6sQcI8sI"),
    b"F": (40, ">HH6sQcI8sI4s"),
    b"E": (31, ">HH6sQIQ"),
    b"C": (36, ">HH6sQIQcI"),
    b"X": (23, ">HH6sQI"),
    b"D": (19, ">HH6sQ"),
    b"U": (35, ">HH6sQQII"),
    b"P": (44, ">HH6sQcI8sIQ"),
}
ITCH_FRAMING = Framing(">Hc", names="length type", length="length", counts_from=2, tag="type",
                       formats={t: fmt for t, (_, fmt) in ITCH.items()}, max_length=64)  # fmt: skip
#: a realistic mix: mostly adds, deletes, executions and cancels
ITCH_MIX = {b"A": 40, b"D": 30, b"E": 8, b"X": 6, b"U": 8, b"F": 2, b"P": 2, b"C": 1, b"S": 0.1, b"R": 0.5}


def random_values(fmt: str, rng: random.Random) -> list:
    """One random value per field of ``fmt``, drawn by its struct code."""
    values = []
    for code, count in _codes(fmt):
        if code == "s":
            values.append(bytes(rng.randrange(1, 256) for _ in range(count)))  # no NUL: numpy S strips them
        elif code == "c":
            values.append(bytes([rng.randrange(65, 91)]))
        else:
            values.append(rng.randrange(0, 1 << (8 * struct.calcsize(">" + code))))
    return values


def _codes(fmt: str) -> list[tuple[str, int]]:
    out, digits = [], ""
    for ch in fmt[1:]:
        if ch.isdigit():
            digits += ch
        else:
            out.append((ch, int(digits or 1)))
            digits = ""
    return out


def test_itch_sizes_match_the_specification():
    for tag, (size, fmt) in ITCH.items():
        assert 1 + struct.calcsize(fmt) == size, tag


def itch_stream(n: int, seed: int) -> tuple[bytes, dict[bytes, list]]:
    """``n`` ITCH messages in a realistic mix, and what a plain struct loop
    (the oracle) decodes from them: tag -> [(fields..., frame number)]."""
    rng = random.Random(seed)
    kinds, weights = list(ITCH_MIX), list(ITCH_MIX.values())
    raw = bytearray()
    for _ in range(n):
        tag = rng.choices(kinds, weights)[0]
        size, fmt = ITCH[tag]
        raw += struct.pack(">Hc", size, tag) + struct.pack(fmt, *random_values(fmt, rng))
    expected: dict[bytes, list] = {}
    pos, frame = 0, 0
    while pos < len(raw):
        length, tag = struct.unpack_from(">Hc", raw, pos)
        expected.setdefault(tag, []).append(struct.unpack_from(ITCH[tag][1], raw, pos + 3) + (frame,))
        pos += 2 + length
        frame += 1
    return bytes(raw), expected


def merged(runs) -> dict[bytes, list]:
    out: dict[bytes, list] = {}
    for run in runs:
        for tag, rows in run.items():
            out.setdefault(tag, []).extend(rows.tolist())
    return out


def test_itch_mixed_file_matches_a_struct_loop(tmp_path):
    raw, expected = itch_stream(3000, 5)
    path = tmp_path / "itch.bin"
    path.write_bytes(raw)
    tables = ITCH_FRAMING.unpack(path.read_bytes())
    assert set(tables) == set(expected)
    for tag, rows in tables.items():
        assert rows.tolist() == expected[tag], tag


def test_itch_matches_an_independent_construct_parser():
    # the oracle: construct's GreedyRange(Prefixed(Int16ub, Switch(type))),
    # written from the ITCH 5.0 specification's tables (tests/itch_construct.py)
    pytest.importorskip("construct")
    import itch_construct

    raw, _ = itch_stream(1500, 17)
    expected = itch_construct.parse(raw)
    tables = ITCH_FRAMING.unpack(raw)
    got = sorted((row[-1], tag, tuple(row[:-1])) for tag, rows in tables.items() for row in rows.tolist())
    assert [frame for frame, _, _ in got] == list(range(len(expected)))
    assert [(tag, values) for _, tag, values in got] == expected


def _pcap_order(data: bytes) -> str:
    """The byte order a pcap file was written in, from its magic number."""
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):  # microsecond / nanosecond, little-endian
        return "<"
    assert magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"), magic
    return ">"


def test_pcap_written_by_dpkt_matches_dpkt_reader(tmp_path):
    dpkt = pytest.importorskip("dpkt")
    rng = random.Random(3)
    path = tmp_path / "capture.pcap"
    with path.open("wb") as fh:
        writer = dpkt.pcap.Writer(fh, snaplen=65535)
        for i in range(500):
            packet = bytes(rng.randrange(256) for _ in range(rng.randrange(60, 1500)))
            writer.writepkt(packet, ts=1_700_000_000 + i * 0.001)
    data = path.read_bytes()
    order = _pcap_order(data)  # dpkt writes the machine's byte order, as libpcap does
    pcap = Framing(order + "IIII", names="ts_sec ts_usec incl_len orig_len", length="incl_len", max_length=65535)
    index = pcap.scan(data, offset=24)  # after the 24-byte global header
    with path.open("rb") as fh:
        packets = list(dpkt.pcap.Reader(fh))
    assert len(index) == len(packets) == 500
    for i, (ts, payload) in enumerate(packets):
        assert bytes(index.body(i)) == payload
        assert index.prefix["ts_sec"][i] + index.prefix["ts_usec"][i] / 1e6 == pytest.approx(ts, abs=1e-6)
        assert index.prefix["orig_len"][i] == len(payload)


def _capture_loopback(path, port: int, payloads: list[bytes]) -> None:
    """Real traffic on 127.0.0.1 captured by tcpdump into ``path``: each
    payload sent as a UDP datagram, then echoed over a TCP connection."""
    import socket
    import subprocess
    import time

    tcpdump = subprocess.Popen(
        ["tcpdump", "-i", "lo", "-n", "-U", "-s", "0", "-w", str(path), f"port {port} or port {port + 1}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        ready = tcpdump.stderr.readline()  # "listening on lo, ..." once the capture runs
        assert b"listening on" in ready, ready
        udp_in = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp_in.bind(("127.0.0.1", port))
        listener = socket.create_server(("127.0.0.1", port + 1))
        with udp_in, listener, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp_out:
            for payload in payloads:
                udp_out.sendto(payload, ("127.0.0.1", port))
                assert udp_in.recv(65536) == payload
            with socket.create_connection(("127.0.0.1", port + 1)) as client:
                server, _ = listener.accept()
                with server:
                    client.sendall(b"ping " * 100)
                    server.sendall(server.recv(65536))
                    client.recv(65536)
        marker = payloads[-1]
        deadline = time.monotonic() + 30
        while marker not in path.read_bytes():  # -U: each packet is written as it arrives
            assert time.monotonic() < deadline, "tcpdump did not write the last datagram"
            time.sleep(0.05)
    finally:
        tcpdump.terminate()
        tcpdump.wait(timeout=30)
        tcpdump.stderr.close()


def test_tcpdump_capture_of_loopback_traffic_matches_dpkt_reader(tmp_path):
    # the oracle: dpkt's pcap reader on the file tcpdump wrote while this test
    # exchanged real UDP datagrams and a TCP connection over 127.0.0.1
    import os
    import shutil

    dpkt = pytest.importorskip("dpkt")
    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump is not installed (Debian package tcpdump)")
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("capturing on the loopback interface needs root")
    rng = random.Random(5)
    payloads = [bytes(rng.randrange(256) for _ in range(n)) for n in (1, 18, 200, 1400, 9000, 60000)]
    path = tmp_path / "loopback.pcap"
    _capture_loopback(path, 40000 + os.getpid() % 20000, payloads)
    data = path.read_bytes()
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"  # the writer's byte order
    divisor = 1e9 if data[:4] in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1e6
    pcap = Framing(order + "IIII", names="ts_sec ts_frac incl_len orig_len", length="incl_len", max_length=1 << 18)
    index = pcap.scan(data, offset=24)
    with path.open("rb") as fh:
        packets = list(dpkt.pcap.Reader(fh))
    assert len(index) == len(packets) >= len(payloads) + 3  # the datagrams, a TCP handshake and more
    for i, (ts, payload) in enumerate(packets):
        assert bytes(index.body(i)) == payload
        assert index.prefix["incl_len"][i] == len(payload)
        assert int(index.prefix["ts_sec"][i]) + int(index.prefix["ts_frac"][i]) / divisor == ts
    bodies = [bytes(index.body(i)) for i in range(len(index))]
    for sent in payloads:  # every datagram is there, whole
        assert any(body.endswith(sent) for body in bodies)


def _masked_crc(data: bytes) -> int:
    """TensorFlow's masked CRC32C (tensorflow/core/lib/hash/crc32c.h)."""
    import google_crc32c

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_tfrecord_read_back_with_crcs_checked():
    pytest.importorskip("google_crc32c")
    rng = random.Random(11)
    records = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300))) for _ in range(50)]
    raw = bytearray()
    for rec in records:  # TFRecord: uint64 length, masked crc of it, data, masked crc of data
        header = struct.pack("<Q", len(rec))
        raw += header + struct.pack("<I", _masked_crc(header)) + rec + struct.pack("<I", _masked_crc(rec))
    index = Framing("<QI", names="length length_crc", length=0, suffix="<I").scan(bytes(raw))
    assert [bytes(index.body(i)) for i in range(len(index))] == records
    for i in range(len(index)):
        assert index.prefix["length_crc"][i] == _masked_crc(struct.pack("<Q", index.prefix["length"][i]))
        assert index.suffix["f0"][i] == _masked_crc(bytes(index.body(i)))


# -- bad input: each a binrec.Error naming the frame and its byte offset ---------


def test_length_smaller_than_what_it_counts():
    raw = struct.pack(">Hc", 23, b"X") + bytes(22) + struct.pack(">Hc", 0, b"X")
    with pytest.raises(Error, match=r"frame 1 at byte offset 25: length 0 is smaller than the 1 prefix bytes"):
        ITCH_FRAMING.scan(raw)


def test_length_past_the_end_of_the_buffer():
    raw = struct.pack("<I", 3) + b"abc" + struct.pack("<I", 10) + b"abc"
    with pytest.raises(Error, match=r"frame 1 at byte offset 7: length 10 runs past the end"):
        Framing("<I", length=0).scan(raw)


def test_length_above_max_length():
    raw = struct.pack("<I", 3) + b"abc" + struct.pack("<I", 100) + bytes(100)
    with pytest.raises(Error, match=r"frame 1 at byte offset 7: body length 100 is above max_length 50"):
        Framing("<I", length=0, max_length=50).scan(raw)


def test_absurd_length_allocates_nothing():
    raw = struct.pack("<Q", 2**63) + b"abc"
    tracemalloc.start()
    try:
        with pytest.raises(Error, match=r"frame 0 at byte offset 0: length 9223372036854775808 runs past the end"):
            Framing("<Q", length=0).scan(raw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # the oracle: a 2**63-byte allocation would have failed or shown here


def test_partial_prefix_at_the_end():
    raw = struct.pack("<I", 1) + b"a" + b"\x01\x00"
    with pytest.raises(Error, match=r"frame 1 at byte offset 5: partial frame"):
        Framing("<I", length=0).scan(raw)


def test_count_past_the_last_frame_is_a_partial_frame():
    raw = struct.pack("<B", 1) + b"a"
    with pytest.raises(Error, match=r"frame 1 at byte offset 2: partial frame"):
        Framing("<B", length=0).scan(raw, count=2)


def test_unknown_tag_is_an_error_by_default():
    raw = struct.pack(">Hc", 19, b"D") + bytes(18) + struct.pack(">Hc", 2, b"Z") + b"?"
    with pytest.raises(Error, match=r"frame 1 at byte offset 21: unknown tag b'Z'"):
        ITCH_FRAMING.unpack(raw)


def test_unknown_tag_frames_stay_reachable_through_scan():
    raw = struct.pack(">Hc", 2, b"Z") + b"?"
    assert bytes(ITCH_FRAMING.scan(raw).body(0)) == b"?"
    assert ITCH_FRAMING.unpack(raw, unknown="skip") == {}


@pytest.mark.parametrize("code", ["f", "4s", "?", "d"])
def test_tag_field_must_be_an_integer_or_byte_code(code):
    with pytest.raises(Error, match=r"tag field 'f1' has format"):
        Framing("<B" + code, length=0, tag=1)


def test_length_field_must_be_an_integer():
    with pytest.raises(Error, match=r"length field 'f0' has format 'f'"):
        Framing("<fB", length=0)


def test_format_that_cannot_fit_under_max_length():
    with pytest.raises(Error, match=r"formats\[b'A'\] '>Q' needs 8 bytes, more than max_length 4"):
        Framing(">Hc", length=0, tag=1, formats={b"A": ">Q"}, max_length=4)


def test_counts_from_past_the_prefix():
    with pytest.raises(Error, match=r"counts_from 4 is past the 3-byte prefix"):
        Framing(">Hc", length=0, counts_from=4)


def test_body_shorter_than_its_format():
    raw = struct.pack(">Hc", 19, b"D") + bytes(18) + struct.pack(">Hc", 10, b"D") + bytes(9)
    with pytest.raises(Error, match=r"frame 1 at byte offset 21: body of 9 bytes is shorter than its tag b'D'"):
        ITCH_FRAMING.unpack(raw)


def test_unpack_names_the_first_bad_frame_in_stream_order():
    # frame 1's body is too short for its tag and frame 2 runs past the end:
    # the error is frame 1's (the oracle: the offsets, by struct.calcsize)
    raw = struct.pack(">Hc", 19, b"D") + bytes(18) + struct.pack(">Hc", 10, b"D") + bytes(9)
    raw += struct.pack(">Hc", 19, b"D") + bytes(5)
    offset = struct.calcsize(">Hc") + 18
    with pytest.raises(Error, match=rf"frame 1 at byte offset {offset}: body of 9 bytes is shorter"):
        ITCH_FRAMING.unpack(raw)


def test_body_longer_than_its_format_with_extra_error():
    raw = struct.pack("<B", 6) + bytes(6)
    with pytest.raises(Error, match=r"frame 0 at byte offset 0: body of 6 bytes is longer"):
        Framing("<B", length=0, formats="<hh").unpack(raw)


def test_tag_value_of_the_wrong_type_in_formats():
    with pytest.raises(Error, match=r"its values are one byte"):
        Framing(">Hc", length=0, tag=1, formats={"A": ">Q"})


def test_tag_value_outside_the_tag_fields_range():
    # the oracle: struct.pack refuses 300 for a 'B' field too
    with pytest.raises(struct.error):
        struct.pack("B", 300)
    with pytest.raises(Error, match=r"tag value 300 does not fit the tag field 'f1' \('B': 0\.\.255\)"):
        Framing(">HB", length=0, tag=1, formats={300: ">Q"})


def test_unpack_without_formats():
    with pytest.raises(Error, match=r"no formats"):
        Framing("<B", length=0).unpack(b"\x00")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    prefix=st.sampled_from(["<B", ">H", "<I", "<Q", ">Hc", "<IB", "<q", "<b"]),
    counts_from=st.sampled_from([None, 0, 1]),
    adjust=st.integers(-5, 5),
    max_length=st.sampled_from([None, 0, 10, 1000]),
    data=st.binary(max_size=200),
)
def test_fuzz_scan_only_raises_clean_errors(prefix, counts_from, adjust, max_length, data):
    framing = Framing(prefix, length=0, counts_from=counts_from, adjust=adjust, max_length=max_length)
    try:
        index = framing.scan(data)
    except Error:
        return
    assert index.end == len(data)
    assert all(0 <= n and s + n <= len(data) for s, n in zip(index.offsets.tolist(), index.lengths.tolist()))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    prefix=st.sampled_from([">HB", "<IB", "<Bb", ">Hc", "<BH"]),
    counts_from=st.sampled_from([None, 0, 1]),
    extra=st.sampled_from(["error", "ignore"]),
    unknown=st.sampled_from(["error", "skip"]),
    data=st.binary(max_size=200),
)
def test_fuzz_unpack_only_raises_clean_errors(prefix, counts_from, extra, unknown, data):
    # random bytes through the tally and decode walks: a binrec.Error or
    # tables whose rows add up to at most the frames (the oracle: scan)
    tag_values = [b"A", b"\x00"] if prefix.endswith("c") else [0, 1, 2, 7]
    formats = dict(zip(tag_values, ["<h", "?", ">I", "B"]))
    framing = Framing(prefix, length=0, tag=1, counts_from=counts_from, formats=formats, extra=extra)
    try:
        tables = framing.unpack(data, unknown=unknown)
    except Error:
        return
    frames = len(framing.scan(data))
    rows = sorted(int(f) for t in tables.values() for f in t["_frame"])
    assert len(rows) == len(set(rows)) and all(0 <= f < frames for f in rows)
    if unknown == "error":
        assert len(rows) == frames


def test_scan_accepts_a_file_like_buffer_copy():
    # bytes read back through BytesIO are the oracle for a file's contents
    raw = struct.pack("<B", 1) + b"q"
    assert len(Framing("<B", length=0).scan(io.BytesIO(raw).getbuffer())) == 1


# -- the scan kernels: both backends agree, chunked output ---------------------


def test_many_frames_cross_the_scan_chunks():
    # more frames than the first output chunk holds (binrec.framing._FIRST_CHUNK):
    # the oracle is a struct loop over the same bytes
    rng = random.Random(8)
    bodies = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 9))) for _ in range(20_000)]
    raw = b"".join(struct.pack(">H", len(b)) + b for b in bodies)
    index = Framing(">H", length=0).scan(raw)
    pos, starts = 0, []
    while pos < len(raw):
        starts.append(pos + 2)
        pos += 2 + struct.unpack_from(">H", raw, pos)[0]
    assert index.offsets.tolist() == starts
    assert index.lengths.tolist() == [len(b) for b in bodies]


def test_compiled_frame_scan_codes_agree_with_the_contract():
    from binrec import _backend
    from binrec._kernels import FrameScan

    if _backend.compiled_kernels is None:
        pytest.skip("compiled backend binrec._kernels_c not built")
    assert _backend.compiled_kernels.FRAME_SCAN == {s.name: int(s) for s in FrameScan}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.binary(max_size=120),
    start=st.integers(0, 5),
    count=st.integers(-1, 12),
    room=st.integers(0, 12),
    width=st.sampled_from([1, 2, 4, 8]),
    signed=st.booleans(),
    big=st.booleans(),
    counted_prefix=st.integers(0, 3),
    adjust=st.sampled_from([-(2**32), -3, 0, 2, 2**32]),
    max_length=st.sampled_from([-1, 0, 5, 2**61]),
    ssize=st.sampled_from([0, 2]),
)
def test_both_scan_kernels_agree(
    data, start, count, room, width, signed, big, counted_prefix, adjust, max_length, ssize
):
    # the oracle: the Python kernel (int.from_bytes, exact integers)
    from binrec import _backend, _kernels_py

    if _backend.compiled_kernels is None:
        pytest.skip("compiled backend binrec._kernels_c not built")
    start = min(start, len(data))
    psize = width + 1
    buf = memoryview(data)
    answers = []
    for kernels in (_kernels_py, _backend.compiled_kernels):
        starts, lengths = np.full(room, -7, np.int64), np.full(room, -7, np.int64)
        n, pos, status = kernels.scan_frames(
            buf, start, count, psize, ssize, 1, width, signed, big, counted_prefix, adjust, max_length, starts, lengths
        )
        answers.append((n, pos, int(status), starts.tolist(), lengths.tolist()))
    assert answers[0] == answers[1]


# -- iter_unpack: paths, file objects, pipes, buffers ---------------------------


@pytest.fixture
def small_reads(monkeypatch):
    """Reads of 7 bytes, so that nearly every frame crosses a read boundary."""
    from binrec import framing

    monkeypatch.setattr(framing, "_READ_BYTES", 7)


def test_iter_unpack_path_matches_a_struct_loop(tmp_path, small_reads):
    raw, expected = itch_stream(500, 6)
    path = tmp_path / "itch.bin"
    path.write_bytes(b"HDR" + raw)
    runs = list(ITCH_FRAMING.iter_unpack(path, chunk_size=50, offset=3))
    assert merged(runs) == expected
    assert all(sum(len(rows) for rows in run.values()) <= 50 for run in runs)


def test_iter_unpack_file_object_and_buffer_match_a_struct_loop(small_reads):
    raw, expected = itch_stream(300, 7)
    assert merged(ITCH_FRAMING.iter_unpack(io.BytesIO(raw), chunk_size=64)) == expected
    assert merged(ITCH_FRAMING.iter_unpack(raw, chunk_size=64)) == expected


def test_iter_unpack_reads_a_pipe():
    # a real pipe from a child process writing the stream in odd-sized pieces
    import subprocess
    import sys

    raw, expected = itch_stream(2000, 8)
    writer = (
        "import sys\nraw = sys.stdin.buffer.read()\n"
        "for i in range(0, len(raw), 4093):\n    sys.stdout.buffer.write(raw[i:i+4093]); sys.stdout.buffer.flush()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", writer], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    proc.stdin.write(raw)
    proc.stdin.close()
    try:
        assert merged(ITCH_FRAMING.iter_unpack(proc.stdout, chunk_size=700)) == expected
    finally:
        proc.stdout.close()
        proc.wait()


@pytest.mark.parametrize("trailing", ["error", "ignore", "return"])
def test_iter_unpack_partial_frame_at_the_end(trailing, small_reads):
    whole = struct.pack("<Bh", 2, 1) + struct.pack("<Bh", 2, 2)
    partial = struct.pack("<B", 2) + b"\x05"
    framing = Framing("<B", length=0, formats="<h")
    stream = io.BytesIO(whole + partial)
    if trailing == "error":
        with pytest.raises(Error, match=r"frame 2 at byte offset 6: length 2 runs past the end"):
            list(framing.iter_unpack(stream, trailing=trailing))
        return
    runs = list(framing.iter_unpack(stream, trailing=trailing))
    arrays = [r for r in runs if not isinstance(r, bytes)]
    assert [row for a in arrays for row in a.tolist()] == [(1, 0), (2, 1)]
    assert [r for r in runs if isinstance(r, bytes)] == ([partial] if trailing == "return" else [])


def test_iter_unpack_errors_name_the_streams_frame_and_offset(small_reads):
    raw, _ = itch_stream(40, 9)
    bad = raw + struct.pack(">Hc", 0, b"A")
    with pytest.raises(Error, match=rf"frame 40 at byte offset {len(raw)}: length 0 is smaller"):
        list(ITCH_FRAMING.iter_unpack(io.BytesIO(bad), chunk_size=8))


def test_iter_unpack_unknown_tag_names_the_streams_frame(small_reads):
    raw, _ = itch_stream(30, 10)
    bad = raw + struct.pack(">Hc", 2, b"Z") + b"?"
    with pytest.raises(Error, match=rf"frame 30 at byte offset {len(raw)}: unknown tag b'Z'"):
        list(ITCH_FRAMING.iter_unpack(io.BytesIO(bad), chunk_size=8))


def test_iter_unpack_offset_past_the_end_of_a_stream():
    with pytest.raises(Error, match=r"offset 10 is past the end of the stream"):
        list(Framing("<B", length=0, formats="B").iter_unpack(io.BytesIO(b"abc"), offset=10))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.binary(min_size=1, max_size=64), size=st.integers(1, 8), picks=st.lists(st.integers(-3, 70), max_size=12)
)
def test_both_gather_kernels_agree(data, size, picks):
    # the oracle: slicing the bytes row by row; a row outside the buffer is refused by both
    from binrec import _backend, _kernels_py

    if _backend.compiled_kernels is None:
        pytest.skip("compiled backend binrec._kernels_c not built")
    starts = np.array(picks, dtype=np.int64)
    inside = all(0 <= s <= len(data) - size for s in picks)
    for kernels in (_kernels_py, _backend.compiled_kernels):
        out = np.zeros((len(starts), size), dtype=np.uint8)
        if inside:
            kernels.gather_rows(memoryview(data), starts, size, out)
            assert [bytes(row) for row in out] == [data[s : s + size] for s in picks]
        else:
            with pytest.raises(ValueError, match="outside the buffer"):
                kernels.gather_rows(memoryview(data), starts, size, out)


# -- the tally and decode walks: both kernels agree ------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.binary(max_size=160),
    count=st.integers(-1, 12),
    tag_width=st.sampled_from([0, 1, 2]),
    tag_signed=st.booleans(),
    keys=st.lists(st.integers(-3, 260), max_size=5, unique=True),
    sizes=st.lists(st.integers(0, 6), min_size=5, max_size=5),
    exact=st.booleans(),
    skip_unknown=st.booleans(),
    max_length=st.sampled_from([-1, 4, 2**61]),
)
def test_both_tally_kernels_agree(data, count, tag_width, tag_signed, keys, sizes, exact, skip_unknown, max_length):
    # the oracle: the Python kernel (a loop over prefixes, exact integers)
    from binrec import _backend, _kernels_py
    from binrec._kernels import FrameSpec

    if _backend.compiled_kernels is None:
        pytest.skip("compiled backend binrec._kernels_c not built")
    spec = FrameSpec(3, 1, 0, 1, False, False, 0, 0, max_length, 1, tag_width, tag_signed, True)
    keys = np.array(sorted(keys) if tag_width else [], dtype=np.int64)
    body_sizes = np.array(sizes[: len(keys)] if tag_width else sizes[:1], dtype=np.int64)
    answers = []
    for kernels in (_kernels_py, _backend.compiled_kernels):
        counts = np.zeros(len(body_sizes), dtype=np.int64)
        n, pos, status = kernels.tally_frames(
            memoryview(data), 0, count, spec, keys, body_sizes, exact, skip_unknown, counts
        )
        answers.append((n, pos, int(status), counts.tolist()))
    assert answers[0] == answers[1]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    frames=st.lists(st.tuples(st.sampled_from([1, 2, 7, 300]), st.binary(min_size=6, max_size=9)), max_size=20),
    extra=st.booleans(),
)
def test_both_unpack_frame_kernels_decode_as_struct(frames, extra):
    # the oracle: struct.unpack_from on each body; both kernels write the same bytes
    from binrec import _backend, _kernels_py

    if _backend.compiled_kernels is None:
        pytest.skip("compiled backend binrec._kernels_c not built")
    formats = {1: ">hI", 2: "<?xI", 300: ">3sH"}
    raw = b"".join(struct.pack(">HH", len(body), tag) + body for tag, body in frames)
    framing = Framing(">HH", length=0, tag=1, formats=formats, extra="ignore" if extra else "error")
    counts, n, end, status = framing._tally(memoryview(raw), 0, -1, "skip")
    if status != 0:
        return  # a body shorter (or longer) than its format: the tally stops; tested elsewhere
    types = framing._types
    outs = []
    for kernels in (_kernels_py, _backend.compiled_kernels):
        got = [np.empty(int(c), dtype=dt) for c, dt in zip(counts.tolist(), types.dtypes)]
        kernels.unpack_frames(
            memoryview(raw), 0, n, 5, framing._spec, types.keys, [s.layout for s in types.structs], got
        )
        outs.append([o.tobytes() for o in got])
        rows = {tag: o.tolist() for tag, o in zip(types.tags, got)}
        pos, expected = 0, {tag: [] for tag in formats}
        for i, (tag, body) in enumerate(frames):
            if tag in formats:
                expected[tag].append((*struct.unpack_from(formats[tag], body), 5 + i))
            pos += 4 + len(body)
        for tag in formats:  # numpy's S drops trailing NULs when read back
            assert rows[tag] == [
                tuple(v.rstrip(b"\0") if isinstance(v, bytes) else v for v in e) for e in expected[tag]
            ]
    assert outs[0] == outs[1]


@pytest.mark.parametrize("types", [3, 100])
def test_many_types_match_a_struct_loop(types):
    # up to 64 types the compiled decode fixes rows up in batches, past that
    # row by row: both against struct.unpack_from, frame by frame
    rng = random.Random(types)
    formats = {t: (">hI", "<qH", ">d")[t % 3] for t in range(types)}
    raw, expected = bytearray(), {}
    for frame in range(1000):
        tag = rng.randrange(types)
        body = bytes(rng.randrange(256) for _ in range(struct.calcsize(formats[tag])))
        raw += struct.pack(">HH", len(body), tag) + body
        expected.setdefault(tag, []).append((*struct.unpack(formats[tag], body), frame))
    tables = Framing(">HH", length=0, tag=1, formats=formats).unpack(bytes(raw))
    assert set(tables) == set(expected)
    for tag, rows in tables.items():
        got = rows.tolist()
        assert [r[:-1] for r in got if tag % 3 != 2] == [e[:-1] for e in expected[tag] if tag % 3 != 2]
        assert [r[-1] for r in got] == [e[-1] for e in expected[tag]]
        if tag % 3 == 2:  # floats: compare the bits (NaN payloads included)
            assert [struct.pack("<d", r[0]) for r in got] == [struct.pack("<d", e[0]) for e in expected[tag]]


def test_unpack_frame_kernels_refuse_outputs_of_the_wrong_size(backend):
    # the tally sizes the outputs; a mismatch is refused, never written past
    from binrec import _backend

    framing = Framing(">H", length=0, formats=">H")
    raw = struct.pack(">HH", 2, 7) * 3
    types = framing._types
    short = [np.empty(2, dtype=types.dtypes[0])]
    with pytest.raises(ValueError, match="tally"):
        _backend.kernels.unpack_frames(
            memoryview(raw), 0, 3, 0, framing._spec, types.keys, [types.structs[0].layout], short
        )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=0, max_size=40), picks=st.lists(st.integers(-3, 45), max_size=10), pad=st.integers(0, 3))
def test_both_decode_at_kernels_decode_as_struct(data, picks, pad):
    # the oracle: struct.unpack_from at each position; a record outside the buffer is refused by both
    from binrec import _backend, _kernels_py

    if _backend.compiled_kernels is None:
        pytest.skip("compiled backend binrec._kernels_c not built")
    body = binrec.Struct(">hI?")
    starts = np.array(picks, dtype=np.int64)
    # the kernels write the native byte order, as the body's dtype has it
    out_dt = np.dtype({"names": ["f0", "f1", "f2"], "formats": ["=i2", "=u4", "?"], "offsets": [0, 2, 6],
                       "itemsize": body.size + pad})  # fmt: skip
    inside = all(0 <= s <= len(data) - body.size for s in picks)
    for kernels in (_kernels_py, _backend.compiled_kernels):
        out = np.zeros(len(starts), dtype=out_dt)
        if inside:
            kernels.decode_at(body.layout, memoryview(data), starts, None, 0, out)
            expected = [struct.unpack_from(">hI?", data, s) for s in picks]
            assert out.tolist() == expected
        else:
            with pytest.raises(ValueError, match="outside the buffer"):
                kernels.decode_at(body.layout, memoryview(data), starts, None, 0, out)


# -- memory: each result is allocated once, at its final size --------------------

MEMORY_MIX = {b"A": ">HH6sQcI8sI", b"D": ">HH6sQ", b"E": ">HH6sQIQ", b"X": ">HH6sQI", b"U": ">HH6sQQII"}


def _itch_like(frames: int) -> bytes:
    rng = random.Random(3)
    tags = rng.choices(list(MEMORY_MIX), k=frames)
    return b"".join(
        struct.pack(">Hc", 1 + struct.calcsize(MEMORY_MIX[t]), t) + bytes(struct.calcsize(MEMORY_MIX[t])) for t in tags
    )


def _peak(fn):
    tracemalloc.start()
    try:
        result = fn()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


@pytest.fixture
def compiled_only(backend):
    if backend != "compiled":
        pytest.skip("the memory bound is the compiled backend's (the Python one makes temporaries)")


def test_unpack_peak_memory_is_the_output_tables(compiled_only):
    # the oracle: tracemalloc's peak against the nbytes of what unpack returns
    raw = _itch_like(100_000)
    framing = Framing(">Hc", length=0, counts_from=2, tag=1, formats=MEMORY_MIX)
    peak, tables = _peak(lambda: framing.unpack(raw))
    assert peak <= 1.1 * sum(t.nbytes for t in tables.values())


def test_scan_peak_memory_is_the_index(compiled_only):
    # the oracle: tracemalloc's peak against the nbytes of the index arrays
    raw = _itch_like(100_000)
    peak, index = _peak(lambda: Framing(">Hc", length=0, counts_from=2).scan(raw))
    assert peak <= 1.1 * (index.prefix.nbytes + index.offsets.nbytes + index.lengths.nbytes)
