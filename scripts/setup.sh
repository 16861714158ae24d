#!/usr/bin/env bash
# One-time set-up on a fresh Debian machine with Python 3.11: the system libraries Qt needs,
# a virtual environment in .venv, and the pinned Python packages. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
REQUIREMENTS=${1:-requirements-dev.txt}

# Libraries PySide6 loads even offscreen (EGL/GL, fonts, keyboard, D-Bus, GLib), and the xcb
# ones it needs to open a real window.
QT_PACKAGES="libegl1 libgl1 libfontconfig1 libxkbcommon0 libdbus-1-3 libglib2.0-0
  libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0
  libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxcb-xfixes0"
if command -v dpkg-query >/dev/null 2>&1; then
  missing=""
  for pkg in $QT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
  done
  if ! "$PYTHON" -c "import ensurepip, venv" >/dev/null 2>&1; then
    missing="$missing python3-venv"
  fi
  if [ -n "$missing" ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if [ -n "$sudo" ] && ! command -v sudo >/dev/null 2>&1; then
      echo "warning: not root and no sudo: install these packages by hand if Qt fails:$missing" >&2
    else
      echo "Installing system packages:$missing"
      $sudo apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
    fi
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r "$REQUIREMENTS"
