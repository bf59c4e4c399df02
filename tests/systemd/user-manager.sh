#!/usr/bin/env bash
# A real systemd user manager for tests (tests/e2e/service.test.mjs): the
# `systemd --user` a desktop login starts (user@UID.service), here for
# uid/gid 65534 with its own runtime directory and home.
#
# Usage (as root): tests/systemd/user-manager.sh DIR
#   DIR/run  the user's $XDG_RUNTIME_DIR (0700), DIR/home its $HOME
#   DIR/cgroups  the cgroup folders handed to the user, one per line: the
#                test kills everything in them (cgroup.kill) when done
# Runs in the foreground until killed.
#
# systemd --user starts only where the system was booted with systemd
# (/run/systemd/system exists) and in a cgroup its user may write, which
# logind delegates on a real login. This machine's init is not systemd, so
# the script gives the manager both, privately: a mount namespace with its
# own /run/systemd, and a cgroup subtree owned by the user. Everything else
# is the distribution's: /usr/lib/systemd/user units, the sockets Debian's
# packages enable there (dbus, pulseaudio or pipewire), the manager itself.
set -euo pipefail

dir="${1:?usage: user-manager.sh DIR}"
SESSION_UID="${SESSION_UID:-65534}"
SESSION_GID="${SESSION_GID:-65534}"
[ "$(id -u)" = 0 ] || { echo "user-manager: must start as root" >&2; exit 1; }

mkdir -p "$dir/run" "$dir/home"
chmod 700 "$dir/run"
chown "$SESSION_UID:$SESSION_GID" "$dir" "$dir/run" "$dir/home"

# The cgroup hierarchies systemd tracks: cgroup2 alone, or (hybrid) the
# cgroup2 mount beside the v1 name=systemd one.
name="oriel-user-$$"
: >"$dir/cgroups"
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  roots=(/sys/fs/cgroup)
else
  roots=()
  for r in /sys/fs/cgroup/unified /sys/fs/cgroup/systemd; do
    [ -f "$r/cgroup.procs" ] && roots+=("$r")
  done
fi
for r in "${roots[@]}"; do
  mkdir "$r/$name"
  chown -R "$SESSION_UID:$SESSION_GID" "$r/$name"
  echo $$ >"$r/$name/cgroup.procs"
  echo "$r/$name" >>"$dir/cgroups"
done

exec unshare --mount --propagation private bash -c '
  set -e
  mkdir -p /run/systemd
  mount -t tmpfs -o mode=755 oriel-user-manager /run/systemd
  mkdir /run/systemd/system
  exec setpriv --reuid="$0" --regid="$1" --clear-groups --inh-caps=-all \
    env -i HOME="$2/home" USER=nobody LOGNAME=nobody SHELL=/bin/sh \
      PATH=/usr/local/bin:/usr/bin:/bin XDG_RUNTIME_DIR="$2/run" \
      /lib/systemd/systemd --user
' "$SESSION_UID" "$SESSION_GID" "$dir"
