# Sourced by scripts/serve, scripts/test and the benchmarks: make .venv if it is missing or
# broken, install what the given requirements file pins (again whenever it, requirements.txt or
# pyproject.toml change), and put .venv/bin first on PATH.
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

version=$("$python" -c 'import sys; print(sys.version.split()[0])')
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null ||
   [ "$(cat "$venv/.wxlogin-python" 2>/dev/null)" != "$version" ]; then
  echo "==> creating $venv with Python $version" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2
  # uv installs about ten times faster; plain pip reads the same pinned files without it.
  "$venv/bin/python" -m pip install -q --disable-pip-version-check uv >&2 2>/dev/null || true
  echo "$version" > "$venv/.wxlogin-python"
fi

# One stamp per requirements file, so serve (runtime pins) and test (runtime + test pins) can
# take turns without reinstalling, let alone rebuilding the venv under a running server.
stamp=$(cat "$root/pyproject.toml" "$root/requirements.txt" "$requirements" | sha256sum | cut -c1-16)
stampfile="$venv/.wxlogin-stamp-$(basename "$requirements" .txt)"
if [ "$(cat "$stampfile" 2>/dev/null)" != "$stamp" ]; then
  echo "==> installing $(basename "$requirements") into $venv" >&2
  if [ -x "$venv/bin/uv" ]; then
    UV_PYTHON_DOWNLOADS=never "$venv/bin/uv" pip install -q --python "$venv/bin/python" \
      -r "$requirements" >&2
    UV_PYTHON_DOWNLOADS=never "$venv/bin/uv" pip install -q --python "$venv/bin/python" \
      --no-deps -e "$root" >&2
  else
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements" >&2
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e "$root" >&2
  fi
  echo "$stamp" > "$stampfile"
fi
export PATH="$venv/bin:$PATH"
export VIRTUAL_ENV="$venv"
