# Sourced by scripts/serve and scripts/test: make .venv if it is missing or stale, install the
# project into it, and export PATH so that `wxlogin` and `pytest` resolve to it.
# Usage: . scripts/bootstrap.sh <requirements file>
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
requirements="$root/$1"
venv="$root/.venv"

python=""
for candidate in "${WXLOGIN_PYTHON:-}" python3.11 python3.12 python3.13 python3.14 python3; do
  [ -n "$candidate" ] || continue
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python=$candidate
    break
  fi
done
if [ -z "$python" ]; then
  echo "wxacode-login needs Python 3.11 or newer (set WXLOGIN_PYTHON to its path)." >&2
  exit 1
fi

# The stamp records what the venv was built from; any change to it means a reinstall.
stamp=$(cat "$root/pyproject.toml" "$requirements" "$root/requirements.txt" | sha256sum | cut -c1-16)
stamp="$stamp $("$python" -c 'import sys; print(sys.version.split()[0])')"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null ||
   [ "$(cat "$venv/.wxlogin-stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "==> preparing $venv (one time; about a minute)" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2
  # uv installs about ten times faster; plain pip reads the same pinned files when it is unavailable.
  if "$venv/bin/python" -m pip install -q --disable-pip-version-check uv >&2 2>/dev/null; then
    UV_PYTHON_DOWNLOADS=never "$venv/bin/uv" pip install -q --python "$venv/bin/python" \
      -r "$requirements" >&2
    UV_PYTHON_DOWNLOADS=never "$venv/bin/uv" pip install -q --python "$venv/bin/python" \
      --no-deps -e "$root" >&2
  else
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements" >&2
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e "$root" >&2
  fi
  echo "$stamp" > "$venv/.wxlogin-stamp"
fi
export PATH="$venv/bin:$PATH"
export VIRTUAL_ENV="$venv"
