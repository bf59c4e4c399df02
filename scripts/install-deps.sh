#!/usr/bin/env bash
# Installs the Debian packages oriel needs to build, run and test.
# Usage: scripts/install-deps.sh [run|test]
# Only installs what is missing; uses sudo when not root.
set -euo pipefail

what="${1:-run}"

run_pkgs=(
  pkg-config
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-nice gstreamer1.0-x gstreamer1.0-tools
  gstreamer1.0-libav gstreamer1.0-vaapi
  xvfb x11-utils xterm
  gstreamer1.0-pipewire  # Wayland capture (pipewiresrc from the ScreenCast portal)
  gstreamer1.0-pulseaudio pulseaudio-utils  # sound: pulsesrc, and pactl
)
# The virtual display's own sound server. Not where PipeWire's pulse layer
# is installed: a second server would fight it for the user's pulse socket;
# the desktop's own server is used there.
if ! dpkg-query -W -f='${Status}' pipewire-pulse 2>/dev/null | grep -q 'install ok installed'; then
  run_pkgs+=(pulseaudio)
fi
test_pkgs=(
  xdotool xclip chromium procps systemd
  x11-xserver-utils  # xsetroot: the flashes of bench audio
  coturn
  openssl  # tls.test.mjs makes its own certificates
  gstreamer1.0-plugins-base-apps  # gst-discoverer-1.0 for recording.test.mjs
  # wayland.test.mjs: a private headless GNOME session (tests/wayland/session.sh)
  mutter pipewire wireplumber dbus-daemon xdg-desktop-portal xdg-desktop-portal-gnome
  python3-gi util-linux  # mutter_remote.py (GObject introspection), setpriv
  libglib2.0-bin         # gdbus, to wait for and drive the session's services
  gir1.2-gtk-3.0         # input_window.py, a GTK test client that records input
  janus                  # sfu.test.mjs: a private Janus VideoRoom (tests/janus/)
)
# Node may come from elsewhere (NodeSource ships npm inside nodejs): only ask
# Debian for it when the commands are missing.
if ! command -v node >/dev/null 2>&1; then test_pkgs+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then test_pkgs+=(npm); fi

pkgs=("${run_pkgs[@]}")
if [ "$what" = test ]; then
  pkgs+=("${test_pkgs[@]}")
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "oriel: installing ${#missing[@]} missing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # coturn's package enables and starts a system TURN server on port 3478.
  # The tests run their own on a free port; a stray system one listening on
  # every interface is not wanted on a CI machine: stop and disable it.
  if [[ " ${missing[*]} " == *" coturn "* ]] && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now coturn >/dev/null 2>&1 || true
  fi
  # Likewise janus.service, which holds ports 8088 and 8188.
  if [[ " ${missing[*]} " == *" janus "* ]] && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now janus >/dev/null 2>&1 || true
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "oriel: cargo not found. Install Rust >= 1.95 with rustup (https://rustup.rs) and re-run." >&2
  exit 1
fi
