#!/usr/bin/env python3
"""Drive mutter from a test: pointer, buttons and keys through
org.gnome.Mutter.RemoteDesktop (no uinput needed), and screenshots through
org.gnome.Mutter.ScreenCast (no portal dialog: this is the compositor's own
interface, which only same-session clients can reach).

Used by the Wayland e2e test to press the portal's "Share" button the first
time, as a user would, and to look at the screen.

    mutter_remote.py [--connector Meta-0] ACTION...
      move X Y        absolute pointer position on the monitor
      click [BUTTON]  press and release (evdev code, default BTN_LEFT)
      key KEYSYM      press and release an X keysym (e.g. 0xff0d Return)
      sleep SECONDS
      shot FILE       write the monitor as a PNG

Runs inside the test session (DBUS_SESSION_BUS_ADDRESS, XDG_RUNTIME_DIR).
"""
import subprocess
import sys
import time

from gi.repository import Gio, GLib

BTN_LEFT = 0x110


def call(bus, dest, path, iface, method, args=None, reply=None):
    return bus.call_sync(dest, path, iface, method, args,
                         GLib.VariantType(reply) if reply else None,
                         Gio.DBusCallFlags.NONE, 10000, None)


def main(argv):
    connector = "Meta-0"
    if argv[:1] == ["--connector"]:
        connector, argv = argv[1], argv[2:]
    bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
    rd_path = call(bus, "org.gnome.Mutter.RemoteDesktop", "/org/gnome/Mutter/RemoteDesktop",
                   "org.gnome.Mutter.RemoteDesktop", "CreateSession", None, "(o)").unpack()[0]
    session_id = call(bus, "org.gnome.Mutter.RemoteDesktop", rd_path,
                      "org.freedesktop.DBus.Properties", "Get",
                      GLib.Variant("(ss)", ("org.gnome.Mutter.RemoteDesktop.Session", "SessionId")),
                      "(v)").unpack()[0]
    sc_path = call(bus, "org.gnome.Mutter.ScreenCast", "/org/gnome/Mutter/ScreenCast",
                   "org.gnome.Mutter.ScreenCast", "CreateSession",
                   GLib.Variant("(a{sv})", ({"remote-desktop-session-id": GLib.Variant("s", session_id)},)),
                   "(o)").unpack()[0]
    stream = call(bus, "org.gnome.Mutter.ScreenCast", sc_path,
                  "org.gnome.Mutter.ScreenCast.Session", "RecordMonitor",
                  GLib.Variant("(sa{sv})", (connector, {"cursor-mode": GLib.Variant("u", 1)})),
                  "(o)").unpack()[0]
    node = {}

    def on_signal(_conn, _sender, _path, _iface, name, params):
        if name == "PipeWireStreamAdded":
            node["id"] = params.unpack()[0]

    bus.signal_subscribe("org.gnome.Mutter.ScreenCast", "org.gnome.Mutter.ScreenCast.Stream",
                         "PipeWireStreamAdded", stream, None, Gio.DBusSignalFlags.NONE, on_signal)
    call(bus, "org.gnome.Mutter.RemoteDesktop", rd_path,
         "org.gnome.Mutter.RemoteDesktop.Session", "Start")
    ctx = GLib.MainContext.default()
    deadline = time.time() + 10
    while "id" not in node and time.time() < deadline:
        ctx.iteration(False)
        time.sleep(0.01)
    if "id" not in node:
        sys.exit("mutter_remote: no PipeWire stream from mutter within 10 s")

    def rd(method, fmt, *args):
        call(bus, "org.gnome.Mutter.RemoteDesktop", rd_path,
             "org.gnome.Mutter.RemoteDesktop.Session", method, GLib.Variant(fmt, args))

    i = 0
    while i < len(argv):
        op = argv[i]
        if op == "move":
            rd("NotifyPointerMotionAbsolute", "(sdd)", stream, float(argv[i + 1]), float(argv[i + 2]))
            i += 3
        elif op == "click":
            button = BTN_LEFT
            if i + 1 < len(argv) and argv[i + 1].lstrip("0x").isalnum() and argv[i + 1][0].isdigit():
                button = int(argv[i + 1], 0)
                i += 1
            rd("NotifyPointerButton", "(ib)", button, True)
            time.sleep(0.05)
            rd("NotifyPointerButton", "(ib)", button, False)
            i += 1
        elif op == "key":
            keysym = int(argv[i + 1], 0)
            rd("NotifyKeyboardKeysym", "(ub)", keysym, True)
            time.sleep(0.05)
            rd("NotifyKeyboardKeysym", "(ub)", keysym, False)
            i += 2
        elif op == "sleep":
            time.sleep(float(argv[i + 1]))
            i += 2
        elif op == "shot":
            # The stream is this session's own consumer-less node: one
            # pipewiresrc may read it (a node serves one consumer).
            r = subprocess.run(["gst-launch-1.0", "-q", "pipewiresrc", f"path={node['id']}",
                                "num-buffers=1", "!", "videoconvert", "!", "pngenc", "snapshot=true",
                                "!", "multifilesink", f"location={argv[i + 1]}", "max-files=1"],
                               timeout=20, check=False)
            if r.returncode != 0:
                sys.exit(f"mutter_remote: screenshot failed ({r.returncode})")
            i += 2
        else:
            sys.exit(f"mutter_remote: unknown action {op!r}")
        ctx.iteration(False)
    call(bus, "org.gnome.Mutter.RemoteDesktop", rd_path,
         "org.gnome.Mutter.RemoteDesktop.Session", "Stop")


if __name__ == "__main__":
    main(sys.argv[1:])
