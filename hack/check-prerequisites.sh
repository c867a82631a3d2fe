#!/usr/bin/env bash
# Check what `make up`, `make test-local` and the local sandbox need on this machine, with versions, and say what to
# install when something is missing or too old. `make deps` runs it after installing what it can (as root, from
# Debian); an ordinary user gets the whole list at once. Exit 1 when something is missing.
#
#   hack/check-prerequisites.sh        PYTHON (default python3) names the interpreter the venv is made from
set -uo pipefail
PY=${PYTHON:-python3}
problems=()
ok() { printf '  ok       %-14s %s\n' "$1" "$2"; }
bad() { printf '  MISSING  %-14s %s\n' "$1" "$2" >&2; problems+=("$1: $2"); }
warn() { printf '  WARNING  %-14s %s\n' "$1" "$2" >&2; }
# version_ge HAVE WANT: dotted numeric comparison
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }

echo "prerequisites (see README.md, \"Prerequisites\"):"
if [ "$(uname -s)" = Linux ]; then
  ok Linux "$(uname -r)"
else
  bad Linux "the sandbox is bubblewrap, which runs on Linux only (this is $(uname -s)); use a Linux VM or container"
fi

if command -v bwrap >/dev/null; then
  v=$(bwrap --version 2>/dev/null | awk '{print $2}')
  if version_ge "${v:-0}" 0.8.0 && bwrap --help 2>&1 | grep -q -- --disable-userns; then
    ok bubblewrap "$v"
  else
    bad bubblewrap "$v is too old: 0.8.0 or newer is needed for --disable-userns (Ubuntu 22.04 ships 0.6; Debian 12 and Ubuntu 24.04 have 0.8+; or build it from source)"
  fi
else
  bad bubblewrap "not installed (Debian/Ubuntu: apt-get install bubblewrap; 0.8.0 or newer)"
fi

if command -v "$PY" >/dev/null; then
  v=$("$PY" -I -c 'import platform; print(platform.python_version())' 2>/dev/null)
  if ! version_ge "${v:-0}" 3.11; then
    bad Python "$PY is ${v:-unusable}: 3.11 or newer is needed (set PYTHON=python3.11 or newer)"
  elif ! "$PY" -P -c 'import venv' 2>/dev/null; then
    bad Python "$PY $v has no venv module (Debian/Ubuntu: apt-get install python3-venv)"
  elif ! "$PY" -P -m pip --version >/dev/null 2>&1 && ! "$PY" -P -c 'import ensurepip' 2>/dev/null; then
    bad Python "$PY $v has neither pip nor ensurepip (Debian/Ubuntu: apt-get install python3-venv)"
  else
    ok Python "$v ($PY)"
  fi
else
  bad Python "no $PY on PATH: Python 3.11 or newer with venv is needed (or set PYTHON=...)"
fi

if command -v node >/dev/null && command -v npm >/dev/null; then
  v=$(node --version | sed 's/^v//')
  if version_ge "$v" 20.19.0; then
    ok Node.js "$v (npm $(npm --version))"
  else
    bad Node.js "$v is too old: 20.19 or newer is needed to build the web UI (Vite); Debian 12's nodejs is 18"
  fi
else
  bad Node.js "node and npm are needed to build the web UI: Node.js 20.19 or newer"
fi

if command -v redis-server >/dev/null; then
  ok redis-server "$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')"
else
  bad redis-server "not installed (Debian/Ubuntu: apt-get install redis-server); make up starts a private one"
fi

for tool in unshare:util-linux setpriv:util-linux pgrep:procps; do
  if command -v "${tool%%:*}" >/dev/null; then ok "${tool%%:*}" "${tool#*:}"; else bad "${tool%%:*}" "not installed (apt-get install ${tool#*:})"; fi
done

# the local sandbox's syscall filter is built with libseccomp (loaded by pyseccomp from the ld.so cache)
if v=$(/sbin/ldconfig -p 2>/dev/null | grep -o 'libseccomp\.so\.[0-9.]*' | head -1) && [ -n "$v" ]; then
  ok libseccomp "$v"
else
  bad libseccomp "not installed (Debian/Ubuntu: apt-get install libseccomp2); the local sandbox refuses to run without its syscall filter"
fi

# a sandbox the way the local backend makes one (user, pid and network namespaces); as root the worker runs it as
# an unprivileged user, so this is only a hint
if command -v bwrap >/dev/null && [ "$(uname -s)" = Linux ]; then
  if bwrap --unshare-user --unshare-pid --unshare-net --die-with-parent --ro-bind / / --proc /proc --dev /dev true \
    >/dev/null 2>&1; then
    ok namespaces "bubblewrap can create a sandbox here"
  else
    warn namespaces "bubblewrap could not create user namespaces: see README.md, \"Troubleshooting\" (sysctl kernel.unprivileged_userns_clone, AppArmor on Ubuntu 24.04)"
  fi
fi

if [ ${#problems[@]} -gt 0 ]; then
  echo >&2
  echo "install or upgrade these, then run make deps again:" >&2
  printf '  - %s\n' "${problems[@]}" >&2
  exit 1
fi
