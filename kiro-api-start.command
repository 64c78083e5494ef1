#!/usr/bin/env bash
# Kiro Tray launcher for macOS (double-click it in Finder) and Linux (./kiro-api-start.command).
#
# The first run creates a private Python environment in .venv and installs Kiro Tray with its tray app
# (a few minutes); later runs start at once and reinstall only when pyproject.toml changed.
# Options pass through to the app, e.g. ./kiro-api-start.command --headless --port 9000 (see --help);
# ./kiro-api-start.command --print-key prints the client API key.
# Without a graphical display (Linux servers, SSH sessions) the gateway starts without the tray.
#
# Written for the bash 3.2 that macOS ships: no `set -u`, no bash 4 features.
# Each "step:" comment has a counterpart in kiro-api-start.bat (tests/packaging checks this).

# step: cd
cd "$(dirname "$0")" || exit 1
# The app names this launcher in its hints (e.g. ./kiro-api-start.command --print-key).
KIRO_TRAY_LAUNCHER="./${0##*/}"
export KIRO_TRAY_LAUNCHER

VENV_PY=.venv/bin/python
STAMP=.venv/.kiro-tray-installed
SUPPORTED='import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 14) else 1)'

# step: pause
# Keep a double-clicked window open long enough to read a message; never wait without a terminal
# (CI, scripts, services). KIRO_TRAY_NO_PAUSE=1 turns the wait off.
pause_if_interactive() {
  if [ -t 0 ] && [ -z "$KIRO_TRAY_NO_PAUSE" ]; then
    printf '\nPress Enter to close this window. '
    read -r _
  fi
}

# fail "what went wrong" ["what to do" ...]: a plain-language message, then exit 1.
fail() {
  printf '\n%s\n' "$1" >&2
  shift
  for advice in "$@"; do
    printf '%s\n' "$advice" | sed 's/^/  /' >&2
  done
  pause_if_interactive
  exit 1
}

is_macos() { [ "$(uname -s)" = Darwin ]; }

has_arg() {
  wanted=$1
  shift
  for arg in "$@"; do
    [ "$arg" = "$wanted" ] && return 0
  done
  return 1
}

file_hash() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d' ' -f1
  else
    cksum "$1" | cut -d' ' -f1,2
  fi
}

python_hint() {
  if is_macos; then
    echo "Install Python 3.13 from https://www.python.org/downloads/macos/ (or: brew install python@3.13),"
    echo "then double-click kiro-api-start.command again."
  else
    echo "Install it with your package manager, for example:"
    echo "  Debian/Ubuntu: sudo apt install python3 python3-venv     Fedora: sudo dnf install python3"
    echo "or with uv (any Linux): uv python install 3.13"
    echo "then run ./kiro-api-start.command again."
  fi
}

# step: python
# Sets PY to the first Python 3.11-3.13 found; fails with an install hint otherwise.
find_python() {
  PY=""
  seen=""
  for candidate in python3.13 python3.12 python3.11 python3; do
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c "$SUPPORTED" >/dev/null 2>&1; then
      PY=$candidate
      return 0
    fi
    version=$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
    [ -n "$version" ] && seen="$version"
  done
  if [ -n "$seen" ]; then
    fail "Kiro Tray could not start: this computer has Python $seen, but Kiro Tray needs Python 3.11, 3.12 or 3.13." "$(python_hint)"
  fi
  fail "Kiro Tray could not start: Python 3 is not installed (Kiro Tray needs Python 3.11, 3.12 or 3.13)." "$(python_hint)"
}

# step: venv
# A working .venv is reused; a missing or broken one (e.g. its Python was uninstalled) is created again.
if ! "$VENV_PY" -c "$SUPPORTED" >/dev/null 2>&1; then
  find_python
  if [ -e .venv ]; then
    echo "The .venv folder does not work with this computer's Python any more; creating it again."
    rm -rf .venv
  fi
  echo "First run: creating a private Python environment in .venv (with $PY) ..."
  if ! "$PY" -m venv .venv; then
    rm -rf .venv
    fail "Kiro Tray could not start: Python could not create its private environment (.venv)." \
      "On Debian/Ubuntu the venv module is a separate package: sudo apt install python3-venv" \
      "Then run this launcher again."
  fi
fi

# step: install
# Installs (editable, so a `git pull` takes effect at once) only when pyproject.toml changed.
wanted_hash=$(file_hash pyproject.toml)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$wanted_hash" ]; then
  echo "Installing Kiro Tray and the packages it needs into .venv (the first time takes a few minutes) ..."
  quiet=""
  [ -t 1 ] || quiet="--quiet"
  # shellcheck disable=SC2086 # $quiet is empty or one word
  if ! "$VENV_PY" -m pip install --disable-pip-version-check $quiet --editable '.[gui]'; then
    fail "Kiro Tray could not start: installing Kiro Tray's packages failed (the lines above say why)." \
      "Check the internet connection (behind a proxy, set HTTPS_PROXY), then run this launcher again."
  fi
  echo "$wanted_hash" >"$STAMP"
fi

# step: display
# No display on Linux (server, SSH, container): run the gateway alone instead of the tray app.
if ! is_macos && [ -z "$DISPLAY" ] && [ -z "$WAYLAND_DISPLAY" ] && ! has_arg --headless "$@" &&
  ! has_arg --help "$@" && ! has_arg --version "$@" && ! has_arg --print-key "$@"; then
  echo "No graphical display found: starting the gateway without the tray icon (--headless)." >&2
  echo "Stop it with Ctrl+C." >&2
  set -- --headless "$@"
fi

# step: run
# The app runs as a child so its exit code can be explained; Ctrl+C, SIGTERM and a closed terminal
# are passed on to it.
"$VENV_PY" -m kiro_tray "$@" &
app_pid=$!
trap 'kill -TERM "$app_pid" 2>/dev/null' INT TERM HUP
wait "$app_pid"
status=$?
while kill -0 "$app_pid" 2>/dev/null; do # a trapped signal interrupted `wait`: wait for the exit
  wait "$app_pid"
  status=$?
done
trap - INT TERM HUP

case $status in
  0 | 130 | 143) exit 0 ;; # stopped normally, with Ctrl+C or SIGTERM
esac
# step: errors
fail "Kiro Tray stopped with an error (exit code $status); the message above says why." \
  "If it says the port is busy, Kiro Tray is probably running already (look for its tray icon)," \
  "or another program uses that port: start this one on another port, e.g. --port 9000."
