#!/usr/bin/env bash
# Fetch the Delta Lake jars from Maven Central (no Ivy) into $1 (default .jars), then
# drop every jar that pyspark already ships under another version: two copies of
# hadoop/jackson/scala on the classpath break Spark in ways that surface much later.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(cd "$here/../.." && pwd)/${1:-.jars}"
py="${PYTHON:-$here/../../.venv/bin/python}"
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$out.tmp"
"$py" - "$out.tmp" <<'PY'
import pathlib, re, sys
import pyspark
ship = pathlib.Path(pyspark.__file__).parent / "jars"
def artifact(name):  # strip "-<version>.jar"
    return re.sub(r"-\d[\w.\-]*\.jar$", "", name)
shipped = {artifact(p.name) for p in ship.glob("*.jar")}
for jar in pathlib.Path(sys.argv[1]).glob("*.jar"):
    if artifact(jar.name) in shipped:
        jar.unlink()
PY
rm -rf "$out" && mv "$out.tmp" "$out"
ls "$out"
