//! Input through the RemoteDesktop portal: the `Backend` the input thread
//! drives, and the task that sends its events to the current session.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ashpd::desktop::remote_desktop::{Axis, DeviceType, KeyState, RemoteDesktop};
use ashpd::desktop::Session;
use ashpd::enumflags2::BitFlags;
use oriel_input::backend::{Backend, NotchAccumulator};
use oriel_input::gamepad::PadEvent;
use oriel_input::protocol::MouseButton;

/// The RemoteDesktop session input goes through right now.
#[derive(Clone)]
pub(super) struct Remote {
    pub(super) proxy: Arc<RemoteDesktop>,
    pub(super) session: Arc<Session<RemoteDesktop>>,
    /// The screencast stream absolute positions are relative to.
    pub(super) node: u32,
    pub(super) size: (i32, i32),
    pub(super) devices: BitFlags<DeviceType>,
}

/// One input event on its way to the portal.
#[derive(Debug, Clone, Copy)]
enum Op {
    Key(i32, bool),
    Keysym(i32, bool),
    /// Normalised 0..=65535 across the stream.
    Abs(u16, u16),
    Rel(f64, f64),
    Button(i32, bool),
    Axis(Axis, i32),
}

/// Input through the RemoteDesktop portal: the input thread queues events,
/// one task on the runtime sends them in order to whichever session is
/// open (a new one after every capture restart). Without a session (nobody
/// watching, or the capture is being restored) events are dropped.
pub(super) struct RemoteInput {
    current: Mutex<Option<(u64, Remote)>>,
    next_id: AtomicU64,
    ops: tokio::sync::mpsc::UnboundedSender<Op>,
}

impl RemoteInput {
    pub(super) fn start(runtime: &tokio::runtime::Handle) -> Arc<Self> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let input = Arc::new(RemoteInput {
            current: Mutex::new(None),
            next_id: AtomicU64::new(1),
            ops: tx,
        });
        runtime.spawn(inject(Arc::downgrade(&input), rx));
        input
    }

    pub(super) fn set(&self, remote: Remote) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut c) = self.current.lock() {
            *c = Some((id, remote));
        }
        id
    }

    /// Forgets session `id` (and only it: a newer one may be open already).
    pub(super) fn clear(&self, id: u64) {
        if let Ok(mut c) = self.current.lock() {
            if c.as_ref().is_some_and(|(i, _)| *i == id) {
                *c = None;
            }
        }
    }

    fn current(&self) -> Option<Remote> {
        self.current.lock().ok()?.as_ref().map(|(_, r)| r.clone())
    }
}

async fn inject(
    input: std::sync::Weak<RemoteInput>,
    mut ops: tokio::sync::mpsc::UnboundedReceiver<Op>,
) {
    let mut warned = false;
    while let Some(op) = ops.recv().await {
        let Some(remote) = input.upgrade().and_then(|i| i.current()) else {
            continue;
        };
        if let Err(e) = send(&remote, op).await {
            // Once per session is enough to explain a dead pointer.
            if !warned {
                tracing::warn!(devices = ?remote.devices, "RemoteDesktop portal refused input: {e}");
                warned = true;
            }
        } else {
            warned = false;
        }
    }
}

async fn send(r: &Remote, op: Op) -> ashpd::Result<()> {
    let state = |down: bool| {
        if down {
            KeyState::Pressed
        } else {
            KeyState::Released
        }
    };
    let s = r.session.as_ref();
    match op {
        Op::Key(code, down) => {
            r.proxy
                .notify_keyboard_keycode(s, code, state(down), Default::default())
                .await
        }
        Op::Keysym(sym, down) => {
            r.proxy
                .notify_keyboard_keysym(s, sym, state(down), Default::default())
                .await
        }
        Op::Abs(x, y) => {
            let (x, y) = stream_position(x, y, r.size);
            r.proxy
                .notify_pointer_motion_absolute(s, r.node, x, y, Default::default())
                .await
        }
        Op::Rel(dx, dy) => {
            r.proxy
                .notify_pointer_motion(s, dx, dy, Default::default())
                .await
        }
        Op::Button(code, down) => {
            r.proxy
                .notify_pointer_button(s, code, state(down), Default::default())
                .await
        }
        Op::Axis(axis, steps) => {
            r.proxy
                .notify_pointer_axis_discrete(s, axis, steps, Default::default())
                .await
        }
    }
}

/// 0..=65535 across the stream to stream pixels, the way the uinput and
/// XTest backends map onto the screen (65535 is the last pixel).
fn stream_position(x: u16, y: u16, (w, h): (i32, i32)) -> (f64, f64) {
    let scale = |v: u16, len: i32| (v as f64 * (len.max(1) - 1) as f64 / 65535.0).floor();
    (scale(x, w), scale(y, h))
}

/// Linux evdev button codes, which NotifyPointerButton takes.
fn button_code(b: MouseButton) -> i32 {
    match b {
        MouseButton::Left => 0x110,
        MouseButton::Right => 0x111,
        MouseButton::Middle => 0x112,
        MouseButton::Back => 0x113,    // BTN_SIDE
        MouseButton::Forward => 0x114, // BTN_EXTRA
    }
}

/// An X keysym for a character: Latin-1 maps to itself, the rest to the
/// Unicode keysym range; Enter and Tab to their function keysyms.
fn keysym(c: char) -> i32 {
    match c {
        '\n' | '\r' => 0xff0d,
        '\t' => 0xff09,
        c if (' '..='~').contains(&c) || ('\u{a0}'..='\u{ff}').contains(&c) => c as i32,
        c => 0x0100_0000 | c as i32,
    }
}

pub(super) struct PortalInput {
    input: Arc<RemoteInput>,
    wheel_x: NotchAccumulator,
    wheel_y: NotchAccumulator,
}

impl PortalInput {
    pub(super) fn new(input: Arc<RemoteInput>) -> Self {
        PortalInput {
            input,
            wheel_x: NotchAccumulator::default(),
            wheel_y: NotchAccumulator::default(),
        }
    }

    fn push(&self, op: Op) -> anyhow::Result<()> {
        self.input
            .ops
            .send(op)
            .map_err(|_| anyhow::anyhow!("the portal input task has stopped"))
    }
}

impl Backend for PortalInput {
    fn name(&self) -> &'static str {
        "portal"
    }

    fn gamepads(&self) -> bool {
        false
    }

    fn key(&mut self, key: u16, down: bool) -> anyhow::Result<()> {
        self.push(Op::Key(key as i32, down))
    }

    fn text(&mut self, text: &str) -> anyhow::Result<()> {
        for c in text.chars() {
            let sym = keysym(c);
            self.push(Op::Keysym(sym, true))?;
            self.push(Op::Keysym(sym, false))?;
        }
        Ok(())
    }

    fn pointer_abs(&mut self, x: u16, y: u16) -> anyhow::Result<()> {
        self.push(Op::Abs(x, y))
    }

    fn pointer_rel(&mut self, dx: i16, dy: i16) -> anyhow::Result<()> {
        self.push(Op::Rel(dx as f64, dy as f64))
    }

    fn button(&mut self, button: MouseButton, down: bool) -> anyhow::Result<()> {
        self.push(Op::Button(button_code(button), down))
    }

    fn wheel(&mut self, dx: i16, dy: i16) -> anyhow::Result<()> {
        let x = self.wheel_x.add(dx);
        let y = self.wheel_y.add(dy);
        if x != 0 {
            self.push(Op::Axis(Axis::Horizontal, x))?;
        }
        if y != 0 {
            self.push(Op::Axis(Axis::Vertical, y))?;
        }
        Ok(())
    }

    fn gamepad_add(&mut self, _slot: u8) -> anyhow::Result<()> {
        anyhow::bail!("gamepads need /dev/uinput; the RemoteDesktop portal has none")
    }

    fn gamepad_remove(&mut self, _slot: u8) {}

    fn gamepad(&mut self, _slot: u8, _event: PadEvent) -> anyhow::Result<()> {
        anyhow::bail!("gamepads need /dev/uinput; the RemoteDesktop portal has none")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_map_like_the_other_backends() {
        assert_eq!(stream_position(0, 0, (1280, 720)), (0.0, 0.0));
        assert_eq!(stream_position(16384, 16384, (1280, 720)), (319.0, 179.0));
        assert_eq!(stream_position(65535, 65535, (1280, 720)), (1279.0, 719.0));
        assert_eq!(stream_position(65535, 65535, (0, 0)), (0.0, 0.0));
    }

    #[test]
    fn keysyms_for_text() {
        assert_eq!(keysym('a'), 0x61);
        assert_eq!(keysym('é'), 0xe9);
        assert_eq!(keysym('€'), 0x0100_20ac);
        assert_eq!(keysym('\n'), 0xff0d);
    }
}
