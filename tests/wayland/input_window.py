#!/usr/bin/env python3
"""A Wayland test client that records what reaches it: a window filling
the screen in one known colour, printing one JSON line per pointer motion,
button and key event (window coordinates, which equal screen coordinates
for a fullscreen window), and "ready" once it is mapped.

    input_window.py [RRGGBB]
"""
import json
import sys

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("Gdk", "3.0")
from gi.repository import Gdk, Gtk  # noqa: E402


def emit(**event):
    print(json.dumps(event), flush=True)


def main():
    colour = sys.argv[1] if len(sys.argv) > 1 else "ff00ff"
    win = Gtk.Window(title="oriel input window")
    css = Gtk.CssProvider()
    css.load_from_data(f"window {{ background-color: #{colour}; }}".encode())
    Gtk.StyleContext.add_provider_for_screen(Gdk.Screen.get_default(), css,
                                             Gtk.STYLE_PROVIDER_PRIORITY_APPLICATION)
    win.add_events(Gdk.EventMask.POINTER_MOTION_MASK | Gdk.EventMask.BUTTON_PRESS_MASK
                   | Gdk.EventMask.BUTTON_RELEASE_MASK | Gdk.EventMask.KEY_PRESS_MASK
                   | Gdk.EventMask.KEY_RELEASE_MASK)
    win.connect("motion-notify-event", lambda _w, e: emit(type="motion", x=round(e.x), y=round(e.y)))
    win.connect("button-press-event",
                lambda _w, e: emit(type="button", button=e.button, down=True, x=round(e.x), y=round(e.y)))
    win.connect("button-release-event",
                lambda _w, e: emit(type="button", button=e.button, down=False, x=round(e.x), y=round(e.y)))
    win.connect("key-press-event", lambda _w, e: emit(type="key", key=Gdk.keyval_name(e.keyval), down=True))
    win.connect("key-release-event", lambda _w, e: emit(type="key", key=Gdk.keyval_name(e.keyval), down=False))
    win.connect("map-event", lambda *_: emit(type="ready"))
    win.connect("destroy", Gtk.main_quit)
    win.fullscreen()
    win.show_all()
    Gtk.main()


if __name__ == "__main__":
    main()
