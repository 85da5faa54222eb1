#!/usr/bin/env bash
# Regenerate constraints.txt, the lock that CI, the README's commands and the Docker image
# install with, from pyproject.toml alone. Run it after changing a dependency:
#   scripts/lock.sh            (PYTHON=/path/to/python3.11 scripts/lock.sh to choose the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3.11}
# The README, CI and the image run Python 3.11: a lock resolved on another version may pin
# releases that 3.11 cannot install (or miss backports it needs).
"$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || { echo "scripts/lock.sh: needs Python 3.11; set PYTHON=/path/to/python3.11" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m venv "$work/venv"
# Every extra, so one lock serves `.`, `.[test]` and the image's `.[postgres,charts]`; read from
# pyproject.toml so a new extra needs no edit here.
extras=$("$python" -c 'import tomllib; print(",".join(tomllib.load(open("pyproject.toml", "rb"))["project"].get("optional-dependencies", {})))')
# Without the current lock (and without $PIP_CONSTRAINT, which would replace the machine's own
# constraints): the newest releases pyproject.toml allows.
env -u PIP_CONSTRAINT "$work/venv/bin/pip" install -q --disable-pip-version-check -e ".[$extras]"
env -u PIP_CONSTRAINT "$work/venv/bin/pip" freeze --exclude-editable > "$work/freeze.txt"

"$python" - "$work/freeze.txt" constraints.txt <<'PY'
"""Plain `name==version` pins only: a URL or a path (a wheel from a local index or folder)
would not install on another machine; a local version label (torch's "+cpu") names a build
that public indexes do not have, and `==2.13.0` still matches it where it is installed."""
import re
import sys

source, target = sys.argv[1:]
pins = []
for line in open(source, encoding="utf-8").read().splitlines():
    match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][^\s+;@]*)(\+[A-Za-z0-9.]+)?", line.strip())
    if not match:
        sys.exit(f"scripts/lock.sh: not a plain pin, would not install elsewhere: {line!r}")
    pins.append(f"{match[1]}=={match[2]}")
pins.sort(key=str.lower)
header = """\
# The lock: the exact release of every package `pip install '.[all extras]'` installs, used as a
# constraints file (pip install -c constraints.txt ...) by the README's commands, .ci/run and the
# Dockerfile. Generated from pyproject.toml with Python 3.11; do not edit: run scripts/lock.sh.
"""
with open(target, "w", encoding="utf-8") as out:
    out.write(header + "\n".join(pins) + "\n")
print(f"constraints.txt: {len(pins)} pins")
PY
