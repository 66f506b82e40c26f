#!/usr/bin/env bash
# Installs OpenStack Rally (the test oracle for krally's Rally-shaped results: `rally task
# import`, `rally task report --html`) in its own virtual environment, cached under
# ~/.cache/krally/rally-<version>-py<X.Y>-venv. Rally is never a krally dependency: only the
# round-trip tests (tests/rally) call its `rally` command. A second run finds it and returns.
set -euo pipefail

version="${KRALLY_RALLY_VERSION:-5.1.1}"
python="${KRALLY_RALLY_PYTHON:-python3}"
pyver="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
cache="${KRALLY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/krally}"
venv="$cache/rally-$version-py$pyver-venv"

if [ -x "$venv/bin/rally" ] && [ -f "$venv/.complete" ]; then
  echo "rally $version: cached in $venv"
  exit 0
fi

echo "installing rally $version into $venv"
rm -rf "$venv"
mkdir -p "$cache"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "rally==$version"
"$venv/bin/rally" --version >/dev/null
touch "$venv/.complete"
echo "rally $version: installed in $venv"
