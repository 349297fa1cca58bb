#!/usr/bin/env bash
# A Java runtime for binrec.spark's tests (PySpark starts a JVM): when `java`
# is missing, install Debian's openjdk-17-jre-headless with apt-get (needs
# root, as in CI); when it is there, do nothing.  Quiet on success.  Where no
# Java can be had (no root, no apt-get) it says so and exits 0: the Spark
# tests then skip with that reason, the rest of the suite still runs.  A
# failed apt-get (as root) is an error, as a failed pip install is.
set -euo pipefail

if command -v java >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
    echo "setup_java.sh: no java, and no apt-get as root to install it: the Spark tests will skip" >&2
    exit 0
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup_java.sh: installing openjdk-17-jre-headless failed (above)" >&2
    exit 1
fi
