#!/usr/bin/env bash
# A private headless GNOME-like Wayland session for tests (see
# ../shared FIELD-NOTES "Wayland capture without a GPU"): its own D-Bus,
# PipeWire with its pulse layer, WirePlumber, mutter (headless, software rendering, virtual
# monitors) and xdg-desktop-portal with the GNOME backend.
#
# Usage: tests/wayland/session.sh DIR [WIDTHxHEIGHT[,WIDTHxHEIGHT...]]
# (one virtual monitor per size, left to right)
#
# Runs in the foreground. Started as root, it first drops to uid/gid 65534
# (setpriv): mutter and the portal are meant to run as a desktop user, and
# the agent under test joins the session as that same user (the session
# bus only lets its own user in). When everything answers it writes
# DIR/env (KEY=VALUE lines: XDG_RUNTIME_DIR, DBUS_SESSION_BUS_ADDRESS,
# WAYLAND_DISPLAY, XDG_CURRENT_DESKTOP, XDG_SESSION_TYPE, HOME) and prints
# "session ready". SIGTERM/SIGINT stop every process it started (the whole
# tree, D-Bus-activated services included) before it exits.
set -euo pipefail

dir="${1:?usage: session.sh DIR [WIDTHxHEIGHT]}"
size="${2:-1280x720}"
SESSION_UID="${SESSION_UID:-65534}"
SESSION_GID="${SESSION_GID:-65534}"

if [ "$(id -u)" = 0 ] && [ "$SESSION_UID" != 0 ]; then
  mkdir -p "$dir"
  chown "$SESSION_UID:$SESSION_GID" "$dir"
  exec setpriv --reuid="$SESSION_UID" --regid="$SESSION_GID" --clear-groups \
    --inh-caps=-all "$0" "$@"
fi

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
run="$dir/run"
# A session started again in the same folder keeps its home (the portal's
# permission store, i.e. the screen-sharing grants) but not the sockets
# and locks of the last one.
rm -rf "$run"
mkdir -p "$run" "$dir/home"
chmod 700 "$run"
rm -f "$dir/env"

export XDG_RUNTIME_DIR="$run"
export HOME="$dir/home"
export XDG_CONFIG_HOME="$HOME/.config" XDG_CACHE_HOME="$HOME/.cache" XDG_DATA_HOME="$HOME/.local/share" XDG_STATE_HOME="$HOME/.local/state"
export DBUS_SESSION_BUS_ADDRESS="unix:path=$run/bus"
export WAYLAND_DISPLAY="wayland-oriel"
export XDG_CURRENT_DESKTOP=GNOME
export XDG_SESSION_TYPE=wayland
# No X11 anywhere in this session.
unset DISPLAY
# GSettings without dconf (not installed): keep settings in memory.
export GSETTINGS_BACKEND=memory
export NO_AT_BRIDGE=1
export GTK_A11Y=none

log() { echo "session: $*" >&2; }

# Every descendant of this shell, deepest last (ppid walk over /proc).
descendants() {
  local all
  all="$(ps -e -o pid=,ppid= 2>/dev/null || true)"
  local frontier="$$" found=""
  while [ -n "$frontier" ]; do
    local next=""
    for p in $frontier; do
      next="$next $(awk -v p="$p" '$2 == p { print $1 }' <<<"$all")"
    done
    next="$(echo $next)"
    found="$found $next"
    frontier="$next"
  done
  echo $found
}

stopping=0
teardown() {
  [ "$stopping" = 1 ] && return
  stopping=1
  trap - TERM INT EXIT
  local pids
  pids="$(descendants)"
  if [ -n "$pids" ]; then
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 1 30); do
      local left=""
      for p in $pids; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
      [ -z "$left" ] && break
      sleep 0.1
    done
    # Whatever ignored SIGTERM, and anything it started meanwhile.
    pids="$pids $(descendants)"
    kill -KILL $pids 2>/dev/null || true
  fi
  rm -f "$dir/env"
  log "stopped"
}
trap 'teardown; exit 0' TERM INT
trap teardown EXIT

wait_for() { # what, timeout seconds, command...
  local what="$1" t="$2"
  shift 2
  for _ in $(seq 1 $((t * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  log "timed out waiting for $what"
  return 1
}
has_name() {
  gdbus call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
    --method org.freedesktop.DBus.NameHasOwner "$1" 2>/dev/null | grep -q true
}

dbus-daemon --session --nofork --nopidfile --address="$DBUS_SESSION_BUS_ADDRESS" &
wait_for "the session bus" 10 test -S "$run/bus"

pipewire &
wait_for "pipewire" 10 test -S "$run/pipewire-0"
wireplumber &
# PipeWire's pulse layer, as pipewire-pulse runs it on a desktop (see
# pipewire-pulse.conf, beside this script): PulseAudio clients, oriel's
# sound capture among them, find it at $XDG_RUNTIME_DIR/pulse/native.
pipewire -c "$(cd "$(dirname "$0")" && pwd)/pipewire-pulse.conf" &
wait_for "the pulse layer" 10 test -S "$run/pulse/native"
wait_for "the speakers as the default sink" 10 sh -c 'pactl info | grep -q "Default Sink: speakers"'

monitors=()
IFS=, read -ra sizes <<<"$size"
for s in "${sizes[@]}"; do monitors+=(--virtual-monitor "$s"); done
mutter --headless --wayland --no-x11 "${monitors[@]}" --wayland-display="$WAYLAND_DISPLAY" &
wait_for "mutter's Wayland socket" 30 test -S "$run/$WAYLAND_DISPLAY"
wait_for "org.gnome.Mutter.ScreenCast" 30 has_name org.gnome.Mutter.ScreenCast
wait_for "org.gnome.Mutter.RemoteDesktop" 30 has_name org.gnome.Mutter.RemoteDesktop

# Started here rather than on first use so that a broken install fails now,
# with its log next to this one. D-Bus activation restarts them if they die.
/usr/libexec/xdg-desktop-portal-gnome &
wait_for "xdg-desktop-portal-gnome" 30 has_name org.freedesktop.impl.portal.desktop.gnome
/usr/libexec/xdg-desktop-portal &
wait_for "xdg-desktop-portal" 30 has_name org.freedesktop.portal.Desktop

{
  echo "XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR"
  echo "DBUS_SESSION_BUS_ADDRESS=$DBUS_SESSION_BUS_ADDRESS"
  echo "WAYLAND_DISPLAY=$WAYLAND_DISPLAY"
  echo "XDG_CURRENT_DESKTOP=$XDG_CURRENT_DESKTOP"
  echo "XDG_SESSION_TYPE=$XDG_SESSION_TYPE"
  echo "HOME=$HOME"
  echo "GSETTINGS_BACKEND=$GSETTINGS_BACKEND"
} >"$dir/env.tmp"
mv "$dir/env.tmp" "$dir/env"
log "session ready (uid $(id -u), runtime dir $run)"
echo "session ready"

# Until told to stop; a dying mutter is the test's business (it may kill
# and restart it on purpose), so nothing here watches the children.
while true; do sleep 3600 & wait $! || true; done
