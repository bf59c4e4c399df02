//! The X11 CLIPBOARD selection, both ways. A hidden window of ours hears,
//! through XFixes, every time another client takes the selection (no
//! polling), asks that owner for its TARGETS, then for text (UTF8_STRING,
//! else STRING) or a PNG, incrementally (INCR) when the owner sends it in
//! pieces. Setting the clipboard makes the window the selection's owner
//! and answers whoever pastes, until someone else copies.
//!
//! One thread waits for the connection's events; `set` comes from any
//! thread (x11rb's connection is shared safely). A lost connection (the X
//! server restarted) is retried every few seconds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::xfixes::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{
    Atom, AtomEnum, ConnectionExt as _, CreateWindowAux, EventMask, PropMode, Property,
    SelectionNotifyEvent, SelectionRequestEvent, Window, WindowClass, SELECTION_NOTIFY_EVENT,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use x11rb::{CURRENT_TIME, NONE};

use crate::desktop::clipboard::{Content, Limits, Refusal, PNG_MIME, TEXT_MIME};

/// Told each clipboard copied on the desktop by another program, or why
/// one was not taken.
pub type OnCopy = Box<dyn Fn(Result<Content, Refusal>) + Send>;

/// How long before a lost connection is tried again.
const RETRY: Duration = Duration::from_secs(2);

x11rb::atom_manager! {
    Atoms: AtomsCookie {
        CLIPBOARD,
        TARGETS,
        INCR,
        UTF8_STRING,
        TEXT,
        TEXT_PLAIN_UTF8: b"text/plain;charset=utf-8",
        IMAGE_PNG: b"image/png",
        // Where owners put what we ask for, on our window.
        ORIEL_CLIPBOARD,
    }
}

/// One connection and its hidden window.
struct Session {
    conn: RustConnection,
    window: Window,
    atoms: Atoms,
}

impl Session {
    fn open(display: &str) -> Result<Self> {
        let (conn, screen) = super::open(display)?;
        let root = screen.root;
        let atoms = Atoms::new(&conn)?.reply()?;
        conn.xfixes_query_version(5, 0)?
            .reply()
            .context("the X server has no XFixes")?;
        let window = conn.generate_id()?;
        conn.create_window(
            x11rb::COPY_DEPTH_FROM_PARENT,
            window,
            root,
            -10,
            -10,
            1,
            1,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            // PROPERTY_CHANGE: INCR pieces arrive as property changes.
            &CreateWindowAux::new().event_mask(EventMask::PROPERTY_CHANGE),
        )?;
        conn.xfixes_select_selection_input(
            window,
            atoms.CLIPBOARD,
            xfixes::SelectionEventMask::SET_SELECTION_OWNER,
        )?;
        conn.flush()?;
        Ok(Session {
            conn,
            window,
            atoms,
        })
    }
}

/// A reading in progress: what we asked the owner for.
enum Reading {
    Idle,
    Targets,
    Data { target: Atom },
    Pieces { target: Atom, bytes: Vec<u8> },
}

/// The desktop's clipboard on one X display.
pub struct X11Clipboard {
    session: Mutex<Option<Arc<Session>>>,
    /// What we own the selection with, as long as we do.
    owned: Mutex<Option<Content>>,
}

impl X11Clipboard {
    /// Watches `display`'s clipboard from a thread of its own; `on_copy`
    /// hears what other programs copy.
    pub fn start(display: &str, limits: Limits, on_copy: OnCopy) -> Result<Arc<Self>> {
        let first = Session::open(display)?;
        let this = Arc::new(X11Clipboard {
            session: Mutex::new(Some(Arc::new(first))),
            owned: Mutex::new(None),
        });
        let worker = this.clone();
        let display = display.to_string();
        std::thread::Builder::new()
            .name("oriel-clipboard".into())
            .spawn(move || worker.run(&display, limits, on_copy))?;
        Ok(this)
    }

    /// Makes `content` the desktop's clipboard.
    pub fn set(&self, content: Content) -> Result<()> {
        let session = self.session.lock().ok().and_then(|s| s.clone());
        let s = session.ok_or_else(|| anyhow!("no connection to the display"))?;
        if let Ok(mut owned) = self.owned.lock() {
            *owned = Some(content);
        }
        s.conn
            .set_selection_owner(s.window, s.atoms.CLIPBOARD, CURRENT_TIME)?;
        let owner = s
            .conn
            .get_selection_owner(s.atoms.CLIPBOARD)?
            .reply()?
            .owner;
        if owner != s.window {
            return Err(anyhow!("the X server gave the clipboard to another window"));
        }
        Ok(())
    }

    fn run(&self, name: &str, limits: Limits, on_copy: OnCopy) {
        loop {
            let session = self.session.lock().ok().and_then(|s| s.clone());
            if let Some(s) = session {
                match self.serve(&s, limits, &on_copy) {
                    Ok(()) => return,
                    Err(e) => tracing::warn!("clipboard on {name}: {e:#}; trying again"),
                }
            }
            if let Ok(mut slot) = self.session.lock() {
                *slot = None;
            }
            std::thread::sleep(RETRY);
            match Session::open(name) {
                Ok(s) => {
                    if let Ok(mut slot) = self.session.lock() {
                        *slot = Some(Arc::new(s));
                    }
                    tracing::info!("clipboard on {name}: connected again");
                }
                Err(e) => tracing::debug!("clipboard on {name}: {e:#}"),
            }
        }
    }

    /// The event loop of one connection, until it fails.
    fn serve(&self, s: &Session, limits: Limits, on_copy: &OnCopy) -> Result<()> {
        let a = &s.atoms;
        let mut reading = Reading::Idle;
        loop {
            let event = s.conn.wait_for_event()?;
            match event {
                // Another program copied: ask it what it offers.
                Event::XfixesSelectionNotify(e)
                    if e.selection == a.CLIPBOARD && e.owner != s.window && e.owner != NONE =>
                {
                    s.conn.convert_selection(
                        s.window,
                        a.CLIPBOARD,
                        a.TARGETS,
                        a.ORIEL_CLIPBOARD,
                        e.selection_timestamp,
                    )?;
                    reading = Reading::Targets;
                }
                Event::SelectionNotify(e) if e.requestor == s.window => {
                    reading = self.on_answer(s, reading, e, limits, on_copy)?;
                }
                Event::PropertyNotify(e)
                    if e.window == s.window
                        && e.atom == a.ORIEL_CLIPBOARD
                        && e.state == Property::NEW_VALUE =>
                {
                    if let Reading::Pieces { target, bytes } = reading {
                        reading = self.on_piece(s, target, bytes, limits, on_copy)?;
                    }
                }
                Event::SelectionRequest(e) => self.answer(s, &e)?,
                Event::SelectionClear(e) if e.selection == a.CLIPBOARD => {
                    if let Ok(mut owned) = self.owned.lock() {
                        *owned = None;
                    }
                }
                _ => {}
            }
            s.conn.flush()?;
        }
    }

    /// The owner answered a conversion we asked for.
    fn on_answer(
        &self,
        s: &Session,
        reading: Reading,
        e: SelectionNotifyEvent,
        limits: Limits,
        on_copy: &OnCopy,
    ) -> Result<Reading> {
        let a = &s.atoms;
        if e.property == NONE {
            // Refused: an owner without TARGETS may still give text.
            if matches!(reading, Reading::Targets) {
                ask(s, a.UTF8_STRING, e.time)?;
                return Ok(Reading::Data {
                    target: a.UTF8_STRING,
                });
            }
            return Ok(Reading::Idle);
        }
        match reading {
            Reading::Targets => {
                let reply = s
                    .conn
                    .get_property(true, s.window, a.ORIEL_CLIPBOARD, AtomEnum::ATOM, 0, 4096)?
                    .reply()?;
                let offered: Vec<Atom> = reply.value32().map(|v| v.collect()).unwrap_or_default();
                let best = [
                    a.UTF8_STRING,
                    a.TEXT_PLAIN_UTF8,
                    AtomEnum::STRING.into(),
                    a.IMAGE_PNG,
                ]
                .into_iter()
                .find(|t| offered.contains(t));
                match best {
                    Some(target) => {
                        ask(s, target, e.time)?;
                        Ok(Reading::Data { target })
                    }
                    None => Ok(Reading::Idle),
                }
            }
            Reading::Data { target } => {
                let limit = limit_for(s, target, limits);
                let reply = s
                    .conn
                    .get_property(
                        true,
                        s.window,
                        a.ORIEL_CLIPBOARD,
                        AtomEnum::ANY,
                        0,
                        words(limit),
                    )?
                    .reply()?;
                if reply.type_ == a.INCR {
                    // Deleting the property (get_property did) asks for the
                    // first piece.
                    return Ok(Reading::Pieces {
                        target,
                        bytes: Vec::new(),
                    });
                }
                let result = if reply.bytes_after > 0 {
                    Err(Refusal::TooLarge)
                } else {
                    self.decode(s, target, reply.value, limits)
                };
                on_copy(result);
                Ok(Reading::Idle)
            }
            // A stale answer while pieces come: ignore it.
            r @ Reading::Pieces { .. } => Ok(r),
            Reading::Idle => Ok(Reading::Idle),
        }
    }

    /// One INCR piece; an empty one ends the transfer.
    fn on_piece(
        &self,
        s: &Session,
        target: Atom,
        mut bytes: Vec<u8>,
        limits: Limits,
        on_copy: &OnCopy,
    ) -> Result<Reading> {
        let limit = limit_for(s, target, limits);
        let room = limit.saturating_sub(bytes.len());
        let reply = s
            .conn
            .get_property(
                true,
                s.window,
                s.atoms.ORIEL_CLIPBOARD,
                AtomEnum::ANY,
                0,
                words(room),
            )?
            .reply()?;
        if reply.value.is_empty() && reply.bytes_after == 0 {
            on_copy(self.decode(s, target, bytes, limits));
            return Ok(Reading::Idle);
        }
        bytes.extend_from_slice(&reply.value);
        if reply.bytes_after > 0 || bytes.len() > limit {
            // The owner will notice nobody reads on and give up.
            on_copy(Err(Refusal::TooLarge));
            return Ok(Reading::Idle);
        }
        Ok(Reading::Pieces { target, bytes })
    }

    fn decode(
        &self,
        s: &Session,
        target: Atom,
        bytes: Vec<u8>,
        limits: Limits,
    ) -> Result<Content, Refusal> {
        if target == s.atoms.IMAGE_PNG {
            limits.content(PNG_MIME, bytes)
        } else if target == u32::from(AtomEnum::STRING) {
            // ICCCM's STRING is Latin-1.
            let text: String = bytes.iter().map(|&b| b as char).collect();
            limits.content(TEXT_MIME, text.into_bytes())
        } else {
            limits.content(TEXT_MIME, bytes)
        }
    }

    /// Someone pastes what we own.
    fn answer(&self, s: &Session, e: &SelectionRequestEvent) -> Result<()> {
        let a = &s.atoms;
        // Obsolete clients name no property: the target is the property.
        let property = if e.property == NONE {
            e.target
        } else {
            e.property
        };
        let owned = self.owned.lock().ok().and_then(|o| o.clone());
        let text_targets = [a.UTF8_STRING, a.TEXT_PLAIN_UTF8, a.TEXT];
        let done = match owned {
            Some(_) if e.selection != a.CLIPBOARD => false,
            Some(Content::Text(text)) if e.target == a.TARGETS => {
                let mut targets = vec![a.TARGETS, a.UTF8_STRING, a.TEXT_PLAIN_UTF8, a.TEXT];
                if text.chars().all(|c| (c as u32) < 256) {
                    targets.push(AtomEnum::STRING.into());
                }
                put32(s, e.requestor, property, &targets)?
            }
            Some(Content::Png(_)) if e.target == a.TARGETS => {
                put32(s, e.requestor, property, &[a.TARGETS, a.IMAGE_PNG])?
            }
            Some(Content::Text(text)) if text_targets.contains(&e.target) => {
                put8(s, e.requestor, property, a.UTF8_STRING, text.as_bytes())?
            }
            Some(Content::Text(text)) if e.target == u32::from(AtomEnum::STRING) => {
                let latin1: Option<Vec<u8>> =
                    text.chars().map(|c| u8::try_from(c as u32).ok()).collect();
                match latin1 {
                    Some(bytes) => put8(s, e.requestor, property, e.target, &bytes)?,
                    None => false,
                }
            }
            Some(Content::Png(png)) if e.target == a.IMAGE_PNG => {
                put8(s, e.requestor, property, a.IMAGE_PNG, &png)?
            }
            _ => false,
        };
        let reply = SelectionNotifyEvent {
            response_type: SELECTION_NOTIFY_EVENT,
            sequence: 0,
            time: e.time,
            requestor: e.requestor,
            selection: e.selection,
            target: e.target,
            property: if done { property } else { NONE },
        };
        s.conn
            .send_event(false, e.requestor, EventMask::NO_EVENT, reply)?;
        Ok(())
    }
}

fn ask(s: &Session, target: Atom, time: u32) -> Result<()> {
    s.conn.convert_selection(
        s.window,
        s.atoms.CLIPBOARD,
        target,
        s.atoms.ORIEL_CLIPBOARD,
        time,
    )?;
    Ok(())
}

fn limit_for(s: &Session, target: Atom, limits: Limits) -> usize {
    if target == s.atoms.IMAGE_PNG {
        limits.image
    } else {
        limits.text
    }
}

/// 32-bit units to ask for: one more byte than `limit`, to see it is over.
fn words(limit: usize) -> u32 {
    u32::try_from(limit / 4 + 1).unwrap_or(u32::MAX)
}

/// Whether `len` bytes fit one request (BIG-REQUESTS makes that 16 MiB on
/// Xvfb and Xorg, past both limits); otherwise the paste is refused rather
/// than sent in INCR pieces.
fn fits(s: &Session, len: usize) -> bool {
    len + 64 <= s.conn.maximum_request_bytes()
}

fn put8(s: &Session, window: Window, property: Atom, kind: Atom, bytes: &[u8]) -> Result<bool> {
    if !fits(s, bytes.len()) {
        tracing::warn!(
            bytes = bytes.len(),
            "a paste from the desktop's clipboard is too large for one X request; refused"
        );
        return Ok(false);
    }
    s.conn
        .change_property8(PropMode::REPLACE, window, property, kind, bytes)?;
    Ok(true)
}

fn put32(s: &Session, window: Window, property: Atom, atoms: &[Atom]) -> Result<bool> {
    s.conn
        .change_property32(PropMode::REPLACE, window, property, AtomEnum::ATOM, atoms)?;
    Ok(true)
}

#[cfg(test)]
mod tests;
