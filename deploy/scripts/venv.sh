#!/usr/bin/env bash
# Create the project virtualenv at <repo>/.venv (python3) and install the package with its dev
# extras. The editable install is re-run only when pyproject.toml changed since the last
# successful install (a sha256 stamp is kept in .venv/.pyproject.sha256). Idempotent.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.pyproject.sha256"
PYTHON="${PYTHON:-python3}"

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "venv: creating $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
fi

want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [[ "$want" != "$have" ]]; then
    echo "venv: installing -e '.[dev]' (pyproject.toml changed)"
    mkdir -p "$ROOT/.state/logs"
    pip_log="$ROOT/.state/logs/venv.log"
    if ! (cd "$ROOT" && "$VENV/bin/python" -m pip install --disable-pip-version-check \
            -e '.[dev]') >"$pip_log" 2>&1; then
        tail -n 40 "$pip_log" >&2
        echo "venv: pip install failed (full output: $pip_log)" >&2
        exit 1
    fi
    echo "$want" > "$STAMP"
else
    echo "venv: up to date"
fi
