#!/usr/bin/env bash
# Sets RSC Studio up on this machine, then runs the app or the tests:
#   ./dev.sh app [PROJECT]   set up, then open PROJECT (default: the built-in demo project)
#   ./dev.sh test [ARGS]     set up, then run the test suite (ARGS go to pytest)
#   ./dev.sh setup           set up only
# Setup is idempotent and quick when nothing changed: a stamp in the virtual environment records
# what was installed.
set -euo pipefail
cd "$(dirname "$0")"

VENV="${RSC_VENV:-.venv}"
# The one torch pin: on a CPU-only machine this resolves to a CPU wheel, on a user's Linux GPU
# machine to the CUDA build from PyPI. pyproject.toml's range is then already satisfied.
TORCH_VERSION="2.13.0"
# Shared libraries the app needs at run time: PortAudio for sounddevice, and what Qt's xcb platform loads.
SYSTEM_LIBS=(libportaudio.so.2 libxcb-cursor.so.0 libxkbcommon-x11.so.0 libxcb-icccm.so.4 libxcb-keysyms.so.1
             libEGL.so.1 libGL.so.1 libfontconfig.so.1 libdbus-1.so.3)
APT_PACKAGES=(libportaudio2 libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0
              libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libegl1 libgl1 libfontconfig1 libdbus-1-3)

say() { printf '%s\n' "$*" >&2; }

missing_libs() {
  local lib out=()
  for lib in "${SYSTEM_LIBS[@]}"; do
    ldconfig -p 2>/dev/null | grep -q "$lib" || out+=("$lib")
  done
  printf '%s\n' "${out[@]}"
}

setup_system() {
  [ "$(uname -s)" = Linux ] || return 0
  local missing
  missing=$(missing_libs)
  [ -z "$missing" ] && return 0
  if command -v apt-get >/dev/null 2>&1; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
    if [ -z "$sudo" ] || sudo -n true 2>/dev/null; then
      say "Installing system libraries: ${APT_PACKAGES[*]}"
      $sudo apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${APT_PACKAGES[@]}" >/dev/null
      return 0
    fi
    say "RSC Studio needs these system libraries: $(echo $missing)"
    say "Install them with:  sudo apt-get install ${APT_PACKAGES[*]}"
  else
    say "RSC Studio needs these system libraries (PortAudio and Qt's xcb libraries): $(echo $missing)"
  fi
  say "Continuing: sound playback or the app window may not work until they are installed."
}

find_python() {
  local py
  for py in "${PYTHON:-}" python3.12 python3.11 python3.10 python3; do
    [ -n "$py" ] && command -v "$py" >/dev/null 2>&1 || continue
    if "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  say "RSC Studio needs Python 3.10 or newer (python3 -m venv must work)."; exit 1
}

# pip's own output, minus the noise of find-links folders that some machines configure but lack.
pip_install() {
  local log status=0
  log=$(mktemp)
  "$VENV/bin/python" -m pip install -q "$@" >"$log" 2>&1 || status=$?
  grep -v 'is ignored: it is neither a file nor a directory' "$log" >&2 || true
  rm -f "$log"
  [ "$status" -eq 0 ] || { say "Setup failed while installing: $*"; exit 1; }
}

setup_python() {
  local stamp want
  want="torch==$TORCH_VERSION $(cat pyproject.toml dev.sh | sha256sum | cut -c1-16)"
  stamp="$VENV/.rsc-setup-stamp"
  if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    say "Creating the virtual environment in $VENV"
    "$(find_python)" -m venv "$VENV"
  fi
  say "Installing torch==$TORCH_VERSION and RSC Studio into $VENV (a few minutes the first time)"
  pip_install "torch==$TORCH_VERSION"
  pip_install -e ".[dev]"
  "$VENV/bin/python" -c "import torch, trainer, rscapp, PySide6, pyqtgraph, pytest, pytestqt, xdist, importlinter" \
    || { say "Setup failed: the packages above did not import."; exit 1; }
  echo "$want" > "$stamp"
}

cmd="${1:-app}"
shift || true
setup_system
setup_python
case "$cmd" in
  setup) say "Ready: $VENV/bin/rsc and $VENV/bin/rsc-studio" ;;
  app)
    if [ "$(uname -s)" = Linux ] && [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -z "${QT_QPA_PLATFORM:-}" ]; then
      say "No display found (DISPLAY is not set): run this from a desktop session, or under Xvfb (xvfb-run ./dev.sh app)."
      exit 1
    fi
    if [ $# -gt 0 ]; then exec "$VENV/bin/rsc-studio" "$@"; else exec "$VENV/bin/rsc-studio" --demo; fi ;;
  test)
    export QT_QPA_PLATFORM=offscreen
    # Test files run in parallel processes (pytest-xdist), one per core up to four: the learning test
    # then trains beside the rest instead of before it. RSC_TEST_WORKERS=0 runs everything in one process.
    workers="${RSC_TEST_WORKERS:-$(n=$(nproc 2>/dev/null || echo 2); echo $(( n < 4 ? n : 4 )))}"
    exec "$VENV/bin/python" -m pytest -n "$workers" --dist loadfile "$@" ;;
  *) say "usage: ./dev.sh app [PROJECT] | test [PYTEST ARGS] | setup"; exit 2 ;;
esac
