#!/usr/bin/env bash
# Kiro Tray's test command: sets up everything the suite needs on a fresh machine, then runs
# lint, types, import contracts and the test suite. Usage: ./run-tests.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '\n== %s\n' "$*"; }

pick_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 14) else 1)'; then
      echo "$candidate"; return 0
    fi
  done
  echo "Python 3.11, 3.12 or 3.13 is needed to run the tests." >&2
  return 1
}

# Debian/Ubuntu libraries Qt needs offscreen and under Xvfb (installed only when missing and allowed).
QT_DEBS="libglib2.0-0 libdbus-1-3 libegl1 libgl1 libx11-6 libfontconfig1 libfreetype6 libxkbcommon0
  libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0
  libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0 libx11-xcb1 xvfb xdotool trayer x11-apps imagemagick"
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  missing=""
  for deb in $QT_DEBS; do
    dpkg -s "$deb" >/dev/null 2>&1 || missing="$missing $deb"
  done
  if [ -n "$missing" ]; then
    say "installing system packages:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
fi

PY=$(pick_python)
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.kiro-tray-dev-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing kiro-tray with the gui and dev extras"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[gui,dev]'
  echo "$want" > "$stamp"
fi

# Claude Code and Codex, for the end-to-end tests (skipped with a reason when npm is unavailable).
if command -v npm >/dev/null 2>&1 &&
  { [ ! -x tests/e2e/node_modules/.bin/claude ] || [ ! -x tests/e2e/node_modules/.bin/codex ]; }; then
  say "installing Claude Code and Codex from npm for the end-to-end tests"
  npm install --silent --no-audit --no-fund --no-package-lock --prefix tests/e2e >/dev/null 2>&1 ||
    echo "npm install of Claude Code and Codex failed; their end-to-end tests will be skipped"
fi

say "ruff"
.venv/bin/ruff check .
say "mypy"
.venv/bin/mypy
say "import contracts"
.venv/bin/lint-imports
say "pytest"
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
