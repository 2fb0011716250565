#!/usr/bin/env bash
# Install Debian packages for an optional capability, if they are missing and apt can.
#   ensure_apt.sh NAME "WITHOUT" "CHECK" PKG...
# NAME names the capability in messages; WITHOUT says what happens without it; CHECK is a
# shell condition that holds once the packages are there. Idempotent (nothing to do when
# CHECK holds) and never fails the install: it prints why and what to run instead.
set -uo pipefail
export PATH=$PATH:/usr/sbin:/sbin  # ldconfig, for checks run as a user
NAME=$1 WITHOUT=$2 CHECK=$3
shift 3
if eval "$CHECK"; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$NAME: apt-get is not available; install $* yourself ($WITHOUT otherwise)." >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "$NAME: not root and no password-less sudo; run 'apt-get install -y $*' as root ($WITHOUT otherwise)." >&2
    exit 0
  fi
fi
echo "$NAME: installing $* with apt-get ..." >&2
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
         "$@" >/dev/null; }; then
  echo "$NAME: apt-get install $* failed; $WITHOUT." >&2
fi
exit 0
