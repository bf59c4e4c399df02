//! XTest injection on an X11 display, for where /dev/uinput is not
//! writable. Keyboard and pointer only: X has no gamepads. X keycodes are
//! evdev codes + 8 (the evdev XKB rules that Xorg and Xvfb use).

use anyhow::{anyhow, bail, Context, Result};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::xproto::{
    ConnectionExt as _, BUTTON_PRESS_EVENT, BUTTON_RELEASE_EVENT, KEY_PRESS_EVENT,
    KEY_RELEASE_EVENT, MOTION_NOTIFY_EVENT,
};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;

use crate::backend::{Backend, NotchAccumulator};
use crate::gamepad::PadEvent;
use crate::protocol::MouseButton;

const EVDEV_OFFSET: u16 = 8;
/// evdev KEY_LEFTSHIFT, used to type shifted characters.
const KEY_LEFTSHIFT: u16 = 42;

pub struct XTest {
    display: String,
    /// `None` after the connection broke (the X server went away); the
    /// next event reconnects, so input works again once the display is back.
    conn: Option<RustConnection>,
    last_attempt: Option<std::time::Instant>,
    root: u32,
    width: u16,
    height: u16,
    min_keycode: u8,
    /// Keysyms per keycode, from the server's keyboard mapping.
    keysyms: Vec<Vec<u32>>,
    wheel_x: NotchAccumulator,
    wheel_y: NotchAccumulator,
    /// Requests sent since the last round trip ([`XTest::sync`]).
    unsynced: u32,
}

/// A round trip after this many injected events (see [`XTest::sync`]).
const SYNC_EVERY: u32 = 256;

/// Reconnect attempts are at most this frequent, so a stream of pointer
/// motion at a dead display costs nothing.
const RECONNECT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

impl XTest {
    pub fn connect(display: &str) -> Result<Self> {
        let mut x = XTest {
            display: display.to_string(),
            conn: None,
            last_attempt: None,
            root: 0,
            width: 0,
            height: 0,
            min_keycode: 8,
            keysyms: Vec::new(),
            wheel_x: NotchAccumulator::default(),
            wheel_y: NotchAccumulator::default(),
            unsynced: 0,
        };
        x.open()?;
        Ok(x)
    }

    /// (Re)opens the connection and re-reads screen size and keymap, which
    /// a restarted server may have changed.
    fn open(&mut self) -> Result<()> {
        let display = self.display.as_str();
        let (conn, screen) = x11rb::connect(Some(display))
            .with_context(|| format!("XTest: cannot open display {display}"))?;
        conn.extension_information(x11rb::protocol::xtest::X11_EXTENSION_NAME)?
            .ok_or_else(|| anyhow!("display {display} has no XTEST extension"))?;
        let setup = conn.setup();
        let root = setup.roots[screen].root;
        let width = setup.roots[screen].width_in_pixels;
        let height = setup.roots[screen].height_in_pixels;
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let map = conn.get_keyboard_mapping(min, max - min + 1)?.reply()?;
        let per = map.keysyms_per_keycode.max(1) as usize;
        self.keysyms = map.keysyms.chunks(per).map(|c| c.to_vec()).collect();
        self.root = root;
        self.width = width;
        self.height = height;
        self.min_keycode = min;
        self.conn = Some(conn);
        Ok(())
    }

    /// The live connection, reconnecting (rate-limited) if it broke.
    fn conn(&mut self) -> Result<&RustConnection> {
        if self.conn.is_none() {
            let now = std::time::Instant::now();
            if self
                .last_attempt
                .is_some_and(|t| now.duration_since(t) < RECONNECT_EVERY)
            {
                bail!("display {} is unreachable", self.display);
            }
            self.last_attempt = Some(now);
            self.open()?;
            tracing::info!(display = %self.display, "XTest reconnected");
        }
        self.conn
            .as_ref()
            .ok_or_else(|| anyhow!("display {} is unreachable", self.display))
    }

    fn fake(&mut self, kind: u8, detail: u8, x: i16, y: i16) -> Result<()> {
        // A write error means the server went away; if one is back under the
        // same name, the second try reaches it.
        let mut last = None;
        for _ in 0..2 {
            let root = self.root;
            let conn = self.conn()?;
            let sent = conn
                .xtest_fake_input(kind, detail, 0, root, x, y, 0)
                .map(|_| ())
                .and_then(|()| conn.flush());
            match sent {
                Ok(()) => {
                    self.unsynced += 1;
                    if self.unsynced >= SYNC_EVERY {
                        self.sync();
                    }
                    return Ok(());
                }
                Err(e) => {
                    self.conn = None;
                    last = Some(e);
                }
            }
        }
        Err(last.map_or_else(|| anyhow!("XTest: no connection"), Into::into))
    }

    /// One round trip, and the errors of unchecked requests dropped. x11rb
    /// keeps a record of every request it sent until it reads something
    /// the server sent after it, and injection alone never reads: its
    /// queue grew by every event, 7 MiB an hour in the soak's 60 Hz pointer
    /// stream (found with heaptrack). The events already went out; a
    /// failed round trip only means the next one reconnects.
    fn sync(&mut self) {
        self.unsynced = 0;
        let Some(conn) = self.conn.as_ref() else {
            return;
        };
        let answered = conn
            .get_input_focus()
            .map_err(anyhow::Error::from)
            .and_then(|c| c.reply().map_err(anyhow::Error::from))
            .and_then(|_| {
                while conn.poll_for_event()?.is_some() {}
                Ok(())
            });
        if let Err(e) = answered {
            tracing::debug!(display = %self.display, "XTest round trip failed: {e:#}");
            self.conn = None;
        }
    }

    fn keycode(key: u16) -> Result<u8> {
        u8::try_from(key + EVDEV_OFFSET).map_err(|_| anyhow!("key {key} has no X keycode"))
    }

    fn click(&mut self, button: u8, times: i32) -> Result<()> {
        for _ in 0..times.abs() {
            self.fake(BUTTON_PRESS_EVENT, button, 0, 0)?;
            self.fake(BUTTON_RELEASE_EVENT, button, 0, 0)?;
        }
        Ok(())
    }

    /// The keycode and whether Shift is needed to type `c`.
    fn keycode_for(&self, c: char) -> Option<(u8, bool)> {
        let cp = c as u32;
        let keysym = match cp {
            0x20..=0x7e | 0xa0..=0xff => cp,
            _ => 0x0100_0000 | cp,
        };
        for (i, syms) in self.keysyms.iter().enumerate() {
            for (level, sym) in syms.iter().take(2).enumerate() {
                if *sym == keysym {
                    return Some((self.min_keycode + i as u8, level == 1));
                }
            }
        }
        None
    }
}

impl Backend for XTest {
    fn name(&self) -> &'static str {
        "xtest"
    }
    fn gamepads(&self) -> bool {
        false
    }
    fn key(&mut self, key: u16, down: bool) -> Result<()> {
        let kind = if down {
            KEY_PRESS_EVENT
        } else {
            KEY_RELEASE_EVENT
        };
        self.fake(kind, Self::keycode(key)?, 0, 0)
    }
    fn text(&mut self, text: &str) -> Result<()> {
        let shift = Self::keycode(KEY_LEFTSHIFT)?;
        let mut missing = 0;
        for c in text.chars() {
            let c = if c == '\n' { '\r' } else { c };
            let found = match c {
                '\r' => Some((Self::keycode(28)?, false)), // KEY_ENTER
                '\t' => Some((Self::keycode(15)?, false)), // KEY_TAB
                _ => self.keycode_for(c),
            };
            let Some((code, shifted)) = found else {
                missing += 1;
                continue;
            };
            if shifted {
                self.fake(KEY_PRESS_EVENT, shift, 0, 0)?;
            }
            self.fake(KEY_PRESS_EVENT, code, 0, 0)?;
            self.fake(KEY_RELEASE_EVENT, code, 0, 0)?;
            if shifted {
                self.fake(KEY_RELEASE_EVENT, shift, 0, 0)?;
            }
        }
        if missing > 0 {
            bail!("{missing} character(s) are not on the desktop's keyboard layout");
        }
        Ok(())
    }
    fn pointer_abs(&mut self, x: u16, y: u16) -> Result<()> {
        // 0..=65535 spans the whole screen, last pixel included.
        let px = (x as u32 * (self.width.max(1) as u32 - 1) / 65535) as i16;
        let py = (y as u32 * (self.height.max(1) as u32 - 1) / 65535) as i16;
        self.fake(MOTION_NOTIFY_EVENT, 0, px, py)
    }
    fn pointer_rel(&mut self, dx: i16, dy: i16) -> Result<()> {
        self.fake(MOTION_NOTIFY_EVENT, 1, dx, dy)
    }
    fn button(&mut self, button: MouseButton, down: bool) -> Result<()> {
        let detail = match button {
            MouseButton::Left => 1,
            MouseButton::Middle => 2,
            MouseButton::Right => 3,
            MouseButton::Back => 8,
            MouseButton::Forward => 9,
        };
        let kind = if down {
            BUTTON_PRESS_EVENT
        } else {
            BUTTON_RELEASE_EVENT
        };
        self.fake(kind, detail, 0, 0)
    }
    fn wheel(&mut self, dx: i16, dy: i16) -> Result<()> {
        let v = self.wheel_y.add(dy);
        self.click(if v > 0 { 5 } else { 4 }, v)?;
        let h = self.wheel_x.add(dx);
        self.click(if h > 0 { 7 } else { 6 }, h)
    }
    fn gamepad_add(&mut self, _slot: u8) -> Result<()> {
        bail!("gamepads need /dev/uinput; this agent injects through XTest")
    }
    fn gamepad_remove(&mut self, _slot: u8) {}
    fn gamepad(&mut self, _slot: u8, _event: PadEvent) -> Result<()> {
        bail!("gamepads need /dev/uinput")
    }
}
