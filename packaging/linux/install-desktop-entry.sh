#!/bin/sh
# Adds Kiro Tray (this bundle folder) to the desktop's application menu for the current user.
# Run it again after moving the folder; remove with: ./install-desktop-entry.sh --remove
set -eu
here=$(cd "$(dirname "$0")" && pwd)
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
icons="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/256x256/apps"
if [ "${1:-}" = "--remove" ]; then
  rm -f "$apps/kiro-tray.desktop" "$icons/kiro-tray.png"
  echo "Kiro Tray removed from the application menu."
  exit 0
fi
mkdir -p "$apps" "$icons"
cp "$here/kiro-tray.png" "$icons/kiro-tray.png"
sed -e "s|^Exec=.*|Exec=\"$here/kiro-tray\"|" -e "s|^TryExec=.*|TryExec=$here/kiro-tray|" \
  "$here/kiro-tray.desktop" >"$apps/kiro-tray.desktop"
echo "Kiro Tray added to the application menu ($apps/kiro-tray.desktop)."
