"""binrec.spark: record files read by a local Spark session (local[2]) through
the "binrec" Python data source, checked value for value against
Struct.read_file (and struct itself for a few records).

One Spark session serves the whole module: starting the JVM takes most of
its runtime.  Without Java (scripts/setup_java.sh installs it) the module
skips with that reason.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys

import numpy as np
import pytest

from binrec import Struct

pytest.importorskip("pyspark", reason="pyspark is not installed (binrec[spark])")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("no Java runtime for Spark (scripts/setup_java.sh installs one)", allow_module_level=True)

from pyspark.errors import PySparkException  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402
from s3_server import s3_bucket, s3_server  # noqa: E402, F401  (fixtures, found by name)

import binrec.spark  # noqa: E402

# PySpark's own notice when it meets pandas 3 (its collect path checks the version)
pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")

FMT = ">I10sf"
NAMES = "id name temp"
HEADER = b"HEADER-16-BYTES!"  # offset=16


@pytest.fixture(scope="module")
def spark():
    # the executors' Python workers must be this interpreter (it has binrec)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("binrec-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "512m")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.extraJavaOptions", "-Dlog4j2.level=error")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    binrec.spark.register(session)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Three record files after a 16-byte header (one of them empty), and a
    file that is not whole records."""
    folder = tmp_path_factory.mktemp("spark")
    s = Struct(FMT, NAMES)
    rng = np.random.default_rng(16)
    paths = []
    for k, n in enumerate([700, 0, 1234]):
        rows = [(k * 10_000 + i, bytes(rng.integers(0, 256, 10, dtype=np.uint8)), float(i) / 8) for i in range(n)]
        path = folder / f"part{k}.bin"
        path.write_bytes(HEADER + s.pack(rows))
        paths.append(path)
    return folder, paths, s


def read(spark, path, **options):
    reader = spark.read.format("binrec").option("format", FMT).option("names", NAMES).option("offset", 16)
    for key, value in options.items():
        reader = reader.option(key, value)
    return reader.load(path)


def rows(df):
    """Collected rows as tuples, Spark's bytearray as bytes."""
    return [tuple(bytes(v) if isinstance(v, bytearray) else v for v in row) for row in df.collect()]


def oracle(paths, s):
    # the oracle: binrec's own file reader on the same files
    return np.concatenate([s.read_file(p, offset=16) for p in paths]).tolist()


def test_one_file_in_several_partitions_equals_read_file(spark, files):
    folder, paths, s = files
    df = read(spark, str(paths[2]), blocksize=str(100 * s.size))
    assert df.rdd.getNumPartitions() == 13  # 1234 records, 100 a partition
    assert rows(df) == oracle([paths[2]], s)


def test_a_glob_reads_every_file_in_sorted_order(spark, files):
    folder, paths, s = files
    df = read(spark, str(folder / "part*.bin"), blocksize="4KiB")
    assert rows(df) == oracle(paths, s)


def test_a_list_of_paths_reads_them_in_that_order(spark, files):
    folder, paths, s = files
    df = read(spark, [str(paths[2]), str(paths[0])])
    assert rows(df) == oracle([paths[2], paths[0]], s)


def test_a_file_url_reads_the_local_file(spark, files):
    folder, paths, s = files
    assert rows(read(spark, paths[2].as_uri(), blocksize="1KiB")) == oracle([paths[2]], s)


@pytest.fixture
def bucket(request):
    """(moto server, a fresh bucket): tests/s3_server.py's s3_bucket."""
    return request.getfixturevalue("s3_bucket")


def s3_read(spark, server, url, **options):
    return read(spark, url, storage_options=json.dumps(server.storage_options), **options)


def test_an_s3_glob_equals_read_file_of_the_local_files(spark, files, bucket):
    # the moto server is its own process: the executors' Python workers reach it as the driver does
    folder, paths, s = files
    server, bucket = bucket
    fs = server.filesystem()
    for path in paths:
        fs.pipe_file(f"{bucket}/logs/{path.name}", path.read_bytes())
    df = s3_read(spark, server, f"s3://{bucket}/logs/part*.bin", blocksize="8KiB")
    assert df.rdd.getNumPartitions() > 3
    assert rows(df) == oracle(paths, s)


def test_a_missing_s3_key_is_an_error_naming_the_url(spark, bucket):
    server, bucket = bucket
    url = f"s3://{bucket}/nothing.bin"
    assert f"no such record file: {url!r}" in error_of(lambda: s3_read(spark, server, url).collect())


def test_an_s3_object_that_is_not_whole_records_is_an_error_naming_the_url(spark, bucket):
    server, bucket = bucket
    server.filesystem().pipe_file(f"{bucket}/torn.bin", HEADER + Struct(FMT).pack([(1, b"a", 1.0)]) + b"\x01")
    message = error_of(lambda: s3_read(spark, server, f"s3://{bucket}/torn.bin").collect())
    assert f"s3://{bucket}/torn.bin" in message and "not a whole number of" in message


def test_storage_options_with_a_local_path_are_refused(spark, files):
    folder, paths, s = files
    message = error_of(lambda: read(spark, str(paths[0]), storage_options='{"anon": true}').collect())
    assert "storage_options are for fsspec URLs" in message


def test_values_equal_struct_unpack(spark, tmp_path):
    # the oracle: struct on the same bytes (names without trailing NULs,
    # which numpy's S type, and so binrec, drops)
    records = [(7, b"north-west", 3.5), (4294967295, b"s", -1.25), (0, b"mid\x00dle", 1e30)]
    path = tmp_path / "few.bin"
    path.write_bytes(HEADER + b"".join(struct.pack(FMT, *r) for r in records))
    got = rows(read(spark, str(path)))
    assert got == [
        tuple(v.rstrip(b"\0") if isinstance(v, bytes) else v for v in struct.unpack(FMT, struct.pack(FMT, *r)))
        for r in records
    ]


def test_schema_follows_the_format_and_names(spark, files):
    folder, paths, s = files
    assert read(spark, str(paths[0])).schema.simpleString() == "struct<id:bigint,name:binary,temp:float>"


def test_default_names_without_the_names_option(spark, files):
    folder, paths, s = files
    df = spark.read.format("binrec").option("format", FMT).option("offset", "16").load(str(paths[0]))
    assert df.columns == ["f0", "f1", "f2"]


def test_every_numeric_type_round_trips_at_its_limits(spark, tmp_path):
    # the oracle: struct.unpack of the same bytes; unsigned fields widen
    # (uint64 to DECIMAL(20,0)) so no value changes
    fmt = "<bBhHiIqQef?d"
    records = [
        (-128, 255, -32768, 65535, -(2**31), 2**32 - 1, -(2**63), 2**64 - 1, 65504.0, 3.4e38, True, -1e300),
        (127, 0, 32767, 0, 2**31 - 1, 0, 2**63 - 1, 0, -0.5, -1.5, False, 2.5),
    ]
    path = tmp_path / "types.bin"
    path.write_bytes(b"".join(struct.pack(fmt, *r) for r in records))
    df = spark.read.format("binrec").option("format", fmt).load(str(path))
    assert df.schema.simpleString() == (
        "struct<f0:tinyint,f1:smallint,f2:smallint,f3:int,f4:int,f5:bigint,f6:bigint,"
        "f7:decimal(20,0),f8:float,f9:float,f10:boolean,f11:double>"
    )
    expected = [struct.unpack(fmt, struct.pack(fmt, *r)) for r in records]
    assert [tuple(row) for row in df.collect()] == expected


def test_text_fields_are_strings(spark, tmp_path):
    # the oracle: Struct.unpack_columns with text= on the same bytes
    s = Struct("<H6s", names="n city")
    raw = s.pack([(1, b"Oslo"), (2, b"Lima  ")])
    path = tmp_path / "text.bin"
    path.write_bytes(raw)
    df = (
        spark.read.format("binrec")
        .option("format", "<H6s")
        .option("names", "n city")
        .option("text", "city")
        .load(str(path))
    )
    assert df.schema["city"].dataType.simpleString() == "string"
    assert [row.city for row in df.collect()] == s.unpack_columns(raw, text="city")["city"].tolist()


def test_an_empty_file_gives_no_rows(spark, files):
    folder, paths, s = files
    assert read(spark, str(paths[1])).collect() == []


# -- bad input: Spark wraps the Python error; its message still names the cause --


def error_of(action):
    with pytest.raises(PySparkException) as info:
        action()
    return str(info.value)


def test_a_file_that_is_not_whole_records_is_an_error_naming_it(spark, tmp_path):
    path = tmp_path / "torn.bin"
    path.write_bytes(HEADER + Struct(FMT).pack([(1, b"a", 1.0)]) + b"\x01\x02")
    message = error_of(lambda: read(spark, str(path)).collect())
    assert str(path) in message and "not a whole number of" in message


def test_a_bad_format_option_is_an_error_naming_it(spark, files):
    folder, paths, s = files
    message = error_of(lambda: spark.read.format("binrec").option("format", ">I10y").load(str(paths[0])).collect())
    assert "'y'" in message


def test_a_bad_blocksize_option_is_an_error_naming_it(spark, files):
    folder, paths, s = files
    message = error_of(lambda: read(spark, str(paths[0]), blocksize="lots").collect())
    assert "option blocksize='lots' is not a size" in message


def test_a_missing_format_option_is_an_error_saying_so(spark, files):
    folder, paths, s = files
    message = error_of(lambda: spark.read.format("binrec").load(str(paths[0])).collect())
    assert 'option("format"' in message


def test_a_missing_path_is_an_error_naming_it(spark, tmp_path):
    missing = tmp_path / "nowhere.bin"
    message = error_of(lambda: read(spark, str(missing)).collect())
    assert f"no such record file: {str(missing)!r}" in message


def test_a_glob_that_matches_nothing_is_an_error_naming_it(spark, tmp_path):
    pattern = str(tmp_path / "none-*.bin")
    message = error_of(lambda: read(spark, pattern).collect())
    assert f"no record files match {pattern!r}" in message


def test_a_user_schema_that_differs_from_the_format_is_refused(spark, files):
    folder, paths, s = files
    reader = spark.read.format("binrec").schema("id INT, name BINARY, temp FLOAT").option("format", FMT)
    message = error_of(lambda: reader.option("names", NAMES).option("offset", 16).load(str(paths[0])).collect())
    assert "the schema follows from the format" in message


def test_storage_options_must_be_a_json_object(spark, files):
    folder, paths, s = files
    message = error_of(lambda: read(spark, str(paths[0]), storage_options=json.dumps([1])).collect())
    assert "storage_options must be a JSON object" in message
