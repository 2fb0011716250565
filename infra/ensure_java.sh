#!/usr/bin/env bash
# Spark 4 needs Java 17 or 21. Install OpenJDK 17 where it is missing and we can.
set -euo pipefail
major() { java -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print v[1]}'; }
if command -v java >/dev/null 2>&1; then
  m=$(major)
  if [ "$m" = "17" ] || [ "$m" = "21" ]; then exit 0; fi
  echo "java $m found; Spark 4 needs Java 17 or 21" >&2
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing openjdk-17-jre-headless with apt-get ..." >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  exit 0
fi
echo "ERROR: Java 17 is required. Install OpenJDK 17 (e.g. 'apt-get install openjdk-17-jre-headless') and set JAVA_HOME." >&2
exit 1
