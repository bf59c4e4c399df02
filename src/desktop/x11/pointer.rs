//! The X pointer, for pages that draw it themselves: XFixes tells of every
//! change of shape (CursorNotify, no polling) and gives the new image, its
//! hotspot and its name; the place is asked for every [`MOTION_EVERY`]
//! while someone wants it (XFixes tells of shapes, not of motion). The
//! capture then leaves the pointer out of the picture (`show-pointer`).
//!
//! One thread per display, for as long as the agent runs; a lost
//! connection (the X server restarted) is tried again every few seconds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use x11rb::connection::Connection;
use x11rb::protocol::xfixes::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{ConnectionExt as _, Window};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;

use crate::desktop::pointer::{PointerEvent, Shape, MAX_SIDE};

/// How often the place is asked for: a 60 Hz screen's frame.
pub const MOTION_EVERY: Duration = Duration::from_millis(16);
/// How often `wants` is looked at while nobody wants the place.
const IDLE_LOOK: Duration = Duration::from_millis(250);
/// How long before a lost connection is tried again.
const RETRY: Duration = Duration::from_secs(2);

pub type OnPointer = Box<dyn Fn(PointerEvent) + Send>;

/// Watches a display's pointer.
pub struct X11Pointer {
    /// Asked each round: is the place wanted (by a page that draws it)?
    wants_motion: Arc<AtomicBool>,
}

impl X11Pointer {
    /// Connects to `display` (so a display without XFixes fails here) and
    /// tells `on_event` the current shape, then every change.
    pub fn start(display: &str, on_event: OnPointer) -> Result<Arc<Self>> {
        let first = Session::open(display)?;
        let this = Arc::new(X11Pointer {
            wants_motion: Arc::default(),
        });
        let wants = this.wants_motion.clone();
        let name = display.to_string();
        std::thread::Builder::new()
            .name("oriel-pointer".into())
            .spawn(move || run(first, &name, &wants, &on_event))?;
        Ok(this)
    }

    /// Whether the place is asked for (someone draws it from positions).
    pub fn want_motion(&self, on: bool) {
        self.wants_motion.store(on, Ordering::Relaxed);
    }
}

fn run(first: Session, name: &str, wants: &AtomicBool, on_event: &OnPointer) {
    let mut session = Some(first);
    loop {
        if let Some(s) = session.take() {
            if let Err(e) = s.serve(wants, on_event) {
                tracing::warn!("pointer on {name}: {e:#}; trying again");
            }
        }
        std::thread::sleep(RETRY);
        match Session::open(name) {
            Ok(s) => {
                tracing::info!("pointer on {name}: connected again");
                session = Some(s);
            }
            Err(e) => tracing::debug!("pointer on {name}: {e:#}"),
        }
    }
}

struct Session {
    conn: RustConnection,
    root: Window,
}

impl Session {
    fn open(display: &str) -> Result<Self> {
        let (conn, screen) = super::open(display)?;
        let root = screen.root;
        conn.xfixes_query_version(4, 0)?
            .reply()
            .context("the X server has no XFixes")?;
        conn.xfixes_select_cursor_input(root, xfixes::CursorNotifyMask::DISPLAY_CURSOR)?
            .check()
            .context("watching the pointer's shape")?;
        Ok(Session { conn, root })
    }

    fn shape(&self) -> Result<Shape> {
        let c = self.conn.xfixes_get_cursor_image_and_name()?.reply()?;
        Ok(shape_of(
            c.cursor_serial,
            String::from_utf8_lossy(&c.name).into_owned(),
            (c.width, c.height),
            (c.xhot, c.yhot),
            &c.cursor_image,
        ))
    }

    /// Tells the shape now, then each change and (while wanted) each move,
    /// until the connection fails.
    fn serve(&self, wants: &AtomicBool, on_event: &OnPointer) -> Result<()> {
        on_event(PointerEvent::Shape(Arc::new(self.shape()?)));
        let mut last_at: Option<(i16, i16)> = None;
        let mut next_look = Instant::now();
        loop {
            while let Some(event) = self.conn.poll_for_event()? {
                if let Event::XfixesCursorNotify(_) = event {
                    on_event(PointerEvent::Shape(Arc::new(self.shape()?)));
                }
            }
            let now = Instant::now();
            if now >= next_look {
                next_look = now + MOTION_EVERY;
                if wants.load(Ordering::Relaxed) {
                    let p = self.conn.query_pointer(self.root)?.reply()?;
                    let at = (p.root_x, p.root_y);
                    if last_at != Some(at) {
                        last_at = Some(at);
                        on_event(PointerEvent::Moved { x: at.0, y: at.1 });
                    }
                } else {
                    // Told again in full when someone wants it next; until
                    // then only shape changes wake this thread (and a look
                    // at `wants` a few times a second).
                    last_at = None;
                    next_look = now + IDLE_LOOK;
                }
            }
            super::readable_within(
                &self.conn,
                next_look.saturating_duration_since(Instant::now()),
            )?;
        }
    }
}

/// The shape from XFixes' premultiplied ARGB words.
pub fn shape_of(
    serial: u32,
    name: String,
    (width, height): (u16, u16),
    (hot_x, hot_y): (u16, u16),
    argb: &[u32],
) -> Shape {
    let pixels = width as usize * height as usize;
    let fits = width <= MAX_SIDE && height <= MAX_SIDE && argb.len() >= pixels;
    let mut rgba = Vec::with_capacity(if fits { pixels * 4 } else { 0 });
    let mut hidden = true;
    if fits {
        for &p in &argb[..pixels] {
            let a = (p >> 24) as u8;
            let straight = |c: u32| -> u8 {
                let c = (c & 0xff) as u16;
                match a {
                    0 => 0,
                    255 => c as u8,
                    a => ((c * 255 + a as u16 / 2) / a as u16).min(255) as u8,
                }
            };
            rgba.extend_from_slice(&[straight(p >> 16), straight(p >> 8), straight(p), a]);
            hidden &= a == 0;
        }
    } else {
        hidden = false;
    }
    Shape {
        serial,
        name,
        width,
        height,
        hot_x: hot_x.min(width.saturating_sub(1)),
        hot_y: hot_y.min(height.saturating_sub(1)),
        rgba,
        hidden,
    }
}

#[cfg(test)]
mod tests;
