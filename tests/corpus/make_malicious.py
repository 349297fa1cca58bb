"""Build the malicious-pickle corpus: ``python tests/corpus/make_malicious.py``.

Each entry is written by hand, opcode by opcode (no ``pickle.dumps`` of live
objects, so the bytes do not depend on the platform), after the families
that public pickle scanners collect: os/posix/subprocess, eval/exec,
getattr chains, builtins through the memo, copyreg, network clients,
marshal + types.FunctionType, multiprocessing, frame tricks, two pickles in
one file and BUILD on a global.  Every command is harmless (``true``,
port 9 on localhost, files under a temporary folder): the corpus test runs
them only behind an audit hook that stops them anyway.

``tests/test_malicious_corpus.py`` checks that the stored ``*.pkl`` files
are what this script makes, then that every loader refuses every one.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).parent


class Entry(NamedTuple):
    name: str
    data: bytes
    #: the first pickle in the file is harmless (the attack is a later one):
    #: one-pickle loaders may return it
    harmless_first: bool = False
    #: a frame trick: a stream reader with ``peek`` (a real file) reads it
    #: linearly and finds it malformed; the trick needs a reader without
    harmless_when_peeked: bool = False


def G(module: str, name: str) -> bytes:
    """GLOBAL module.name (protocols 0-3)."""
    return f"c{module}\n{name}\n".encode()


def S(text: str) -> bytes:
    """BINUNICODE."""
    raw = text.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw


def B(raw: bytes) -> bytes:
    """BINBYTES."""
    return b"B" + len(raw).to_bytes(4, "little") + raw


def I(n: int) -> bytes:  # noqa: E743 - the opcode's name
    """BININT."""
    return b"J" + n.to_bytes(4, "little", signed=True)


def call(func: bytes, *args: bytes) -> bytes:
    """func(*args) with MARK ... TUPLE REDUCE."""
    return func + b"(" + b"".join(args) + b"tR"


def p2(body: bytes) -> bytes:
    return b"\x80\x02" + body + b"."


def p4(body: bytes) -> bytes:
    return b"\x80\x04" + body + b"."


def stack_global(module: str, name: str) -> bytes:
    """SHORT_BINUNICODE x2 + STACK_GLOBAL (protocol 4)."""
    m, n = module.encode(), name.encode()
    return b"\x8c" + bytes([len(m)]) + m + b"\x8c" + bytes([len(n)]) + n + b"\x93"


def entries(tmp: str = "/tmp/binrec-corpus-target") -> list[Entry]:
    target = f"{tmp}/pwned"
    true_cmd = S("true")
    # a stand-in for marshal.dumps(code): real marshal bytes change with the
    # Python version, and the loaders must refuse before reading them anyway
    code = b"\xe3" + bytes(40)
    hidden = G("os", "system") + b"(" + true_cmd + b"tR"
    two = b"\x80\x02K\x01." + p2(call(G("os", "system"), true_cmd))
    return [
        Entry("os_system_p0", b"cos\nsystem\n(S'true'\ntR."),
        Entry("posix_system_p2", p2(call(G("posix", "system"), true_cmd))),
        Entry("os_popen", p2(call(G("os", "popen"), true_cmd))),
        Entry("os_execv", p2(call(G("os", "execv"), S("/bin/true"), b"(" + S("true") + b"l"))),
        Entry("os_remove", p2(call(G("os", "remove"), S(target)))),
        Entry("subprocess_popen", p2(call(G("subprocess", "Popen"), b"(" + true_cmd + b"l"))),
        Entry("subprocess_check_output", p2(call(G("subprocess", "check_output"), b"(" + true_cmd + b"l"))),
        Entry("subprocess_run_stack_global", p4(stack_global("subprocess", "run") + true_cmd + b"\x85\x85R")),
        Entry("pty_spawn", p2(call(G("pty", "spawn"), b"(" + true_cmd + b"l"))),
        Entry("builtins_eval", p2(call(G("builtins", "eval"), S("__import__('os').system('true')")))),
        Entry("builtins_exec", p2(call(G("builtins", "exec"), S("import os; os.system('true')")))),
        Entry("builtins_compile", p2(call(G("builtins", "compile"), S("1"), S("x"), S("eval")))),
        Entry("builtins_open_write", p2(call(G("builtins", "open"), S(target), S("w")))),
        Entry("io_open_write", p2(call(G("io", "open"), S(target), S("w")))),
        Entry(
            "getattr_chain",
            p2(call(call(G("builtins", "getattr"), call(G("builtins", "__import__"), S("os")), S("system")), true_cmd)),
        ),
        Entry(
            "builtins_getattr_via_memo",
            # getattr stored in the memo, fetched back to build the chain
            p2(
                G("builtins", "getattr")
                + b"q\x01"
                + b"0"
                + call(call(b"h\x01", call(G("builtins", "__import__"), S("os")), S("system")), true_cmd)
            ),
        ),
        Entry(
            "stack_global_names_via_memo",
            p4(b"\x8c\x08builtins\x94\x8c\x04eval\x94\x93" + b"\x8c\x06'pwn'1\x85R"),
        ),
        Entry(
            "copyreg_reconstructor_popen",
            p2(
                call(
                    G("copyreg", "_reconstructor"),
                    G("subprocess", "Popen"),
                    G("subprocess", "Popen"),
                    b"(" + true_cmd + b"l",
                )
            ),
        ),
        Entry("copyreg_newobj", p2(call(G("copyreg", "__newobj__"), G("subprocess", "Popen"), b"(" + true_cmd + b"l"))),
        Entry(
            "socket_create_connection", p2(call(G("socket", "create_connection"), b"(" + S("127.0.0.1") + I(9) + b"t"))
        ),
        Entry("urllib_urlopen", p2(call(G("urllib.request", "urlopen"), S("http://127.0.0.1:9/")))),
        Entry("http_client_connection", p2(call(G("http.client", "HTTPConnection"), S("127.0.0.1"), I(9)))),
        Entry("smtplib_smtp", p2(call(G("smtplib", "SMTP"), S("127.0.0.1"), I(9)))),
        Entry(
            "marshal_function_type",
            p2(call(call(G("types", "FunctionType"), call(G("marshal", "loads"), B(code)), b"}"), b"")),
        ),
        Entry(
            "multiprocessing_spawnv_passfds",
            p2(call(G("multiprocessing.util", "spawnv_passfds"), B(b"/bin/true"), b"(" + B(b"true") + b"l", b"]")),
        ),
        Entry("webbrowser_open", p2(call(G("webbrowser", "open"), S("http://127.0.0.1:9/")))),
        Entry("shutil_rmtree", p2(call(G("shutil", "rmtree"), S(tmp)))),
        Entry("ctypes_cdll", p2(call(G("ctypes", "CDLL"), b"N"))),
        Entry("importlib_import_module", p2(call(G("importlib", "import_module"), S("antigravity")))),
        Entry("runpy_run_module", p2(call(G("runpy", "run_module"), S("antigravity")))),
        Entry("nested_pickle_loads", p2(call(G("pickle", "loads"), B(p2(call(G("os", "system"), true_cmd)))))),
        Entry("functools_partial", p2(call(call(G("functools", "partial"), G("os", "system"), true_cmd), b""))),
        Entry(
            "operator_methodcaller",
            p2(
                call(
                    call(G("operator", "methodcaller"), S("system"), true_cmd),
                    call(G("builtins", "__import__"), S("os")),
                )
            ),
        ),
        Entry("inst_opcode_p0", b"(S'true'\nios\nsystem\n."),
        Entry("obj_opcode", b"(" + G("os", "system") + true_cmd + b"o."),
        Entry("newobj_ex", p4(G("subprocess", "Popen") + b"(" + true_cmd + b"l\x85}\x92")),
        Entry("ext_opcode", b"\x80\x02\x82\x01."),
        Entry("persistent_id", b"\x80\x02" + S("x") + b"Q."),
        Entry("reduce_then_truncated", b"cos\nsystem\n(S'true'\ntR"),
        Entry(
            "frame_cut_opcode",
            b"\x80\x04\x95" + (2).to_bytes(8, "little") + b"X\xff" + b"\x00" * 4 + b"0" + hidden + b"." + b"\x00" * 300,
            harmless_when_peeked=True,
        ),
        Entry(
            "frame_past_stop",
            (
                lambda evil: (
                    b"\x80\x04\x95"
                    + (3 + 7).to_bytes(8, "little")
                    + b"K\x01."
                    + b"\x80\x04B"
                    + len(evil).to_bytes(4, "little")
                    + evil
                    + b"0."
                )
            )(p4(hidden)),
            harmless_first=True,
            harmless_when_peeked=True,
        ),
        Entry("two_pickles_in_one_file", two, harmless_first=True),
        Entry("build_on_fraction", b"\x80\x02cfractions\nFraction\nN}X\x08\x00\x00\x00__repr__cbuiltins\nstr\ns\x86b."),
        Entry(
            "build_on_ordereddict_via_memo",
            p4(
                stack_global("collections", "OrderedDict")
                + b"\x94"
                + b"0"
                + b"h\x00"
                + b"N}"
                + S("__repr__")
                + G("builtins", "str")
                + b"s\x86b"
            ),
        ),
        Entry("setitems_on_global", p2(G("datetime", "date") + b"(" + S("x") + I(1) + b"u")),
        Entry("build_on_enum_member", p2(call(G("uuid", "SafeUUID"), I(0)) + b"}" + S("_value_") + I(99) + b"sb")),
    ]


def write(folder: Path = HERE) -> list[Path]:
    """Write every entry as ``folder/<name>.pkl``; return the paths."""
    paths = []
    for e in entries():
        path = folder / f"{e.name}.pkl"
        path.write_bytes(e.data)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(p)
