//! The X screen read the way a compositor would: XDamage says when
//! something was drawn, XShm copies the root window without a trip through
//! the socket, XFixes gives the pointer's image and place (Xvfb and most
//! servers keep the pointer out of the framebuffer, so it is drawn in here).
//! Used by the `orielx11src` element (`media::x11src`); nothing in here
//! knows GStreamer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use x11rb::connection::Connection;
use x11rb::protocol::damage::{self, ConnectionExt as _};
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::protocol::xfixes::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, Window};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;

/// What happened while waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Something was drawn, or the pointer moved or changed shape.
    Drawn,
    /// Nothing by the deadline.
    Nothing,
}

/// The pointer as last drawn: place and shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct PointerState {
    x: i16,
    y: i16,
    serial: u32,
}

/// The most shared segments a screen keeps. Each frame handed downstream
/// holds its segment until dropped; the capture converts each frame before
/// grabbing the next, so two are in use (the frame kept for repeats and
/// the one being grabbed). Past this, a frame is read over the socket.
const MAX_SEGMENTS: usize = 4;

/// A grabbed screen, BGRx rows of `width * 4` bytes. A frame in a shared
/// segment keeps that segment from being grabbed into until dropped, so
/// downstream reads it in place: no copy.
pub enum Frame {
    Shared(Arc<Segment>, usize),
    /// Read with GetImage: every segment was still held downstream.
    Owned(Vec<u8>),
}

impl AsRef<[u8]> for Frame {
    fn as_ref(&self) -> &[u8] {
        match self {
            Frame::Shared(seg, len) => &seg.bytes()[..*len],
            Frame::Owned(v) => v,
        }
    }
}

pub struct Screen {
    conn: RustConnection,
    root: Window,
    width: u16,
    height: u16,
    /// Shared segments, created as needed (up to MAX_SEGMENTS), each with
    /// the X server's id for it.
    segments: Vec<(Arc<Segment>, shm::Seg)>,
    damage: damage::Damage,
    pointer: Option<PointerState>,
    show_pointer: bool,
}

impl Screen {
    /// Connects to `display` and sets up the shared segment and the damage
    /// watch over the whole root window.
    pub fn open(display: &str, show_pointer: bool) -> Result<Self> {
        let (conn, s) = super::open(display)?;
        let (root, width, height) = (s.root, s.width_in_pixels, s.height_in_pixels);
        if s.root_depth != 24 && s.root_depth != 32 {
            bail!(
                "display {display} has depth {}: only 24 and 32 bits are read",
                s.root_depth
            );
        }
        conn.shm_query_version()?
            .reply()
            .with_context(|| format!("display {display} has no MIT-SHM"))?;
        conn.damage_query_version(1, 1)?
            .reply()
            .with_context(|| format!("display {display} has no DAMAGE"))?;
        conn.xfixes_query_version(4, 0)?
            .reply()
            .with_context(|| format!("display {display} has no XFIXES"))?;
        let damage = conn.generate_id()?;
        conn.damage_create(damage, root, damage::ReportLevel::NON_EMPTY)?
            .check()
            .context("watching the screen for damage")?;
        let mut screen = Screen {
            conn,
            root,
            width,
            height,
            segments: Vec::new(),
            damage,
            pointer: None,
            show_pointer,
        };
        // The first segment now, so a display that cannot share memory with
        // us (another machine's) fails here rather than at the first frame.
        screen.add_segment()?;
        Ok(screen)
    }

    fn frame_len(&self) -> usize {
        self.width as usize * self.height as usize * 4
    }

    fn add_segment(&mut self) -> Result<usize> {
        let segment = Segment::new(self.frame_len())?;
        let seg = self.conn.generate_id()?;
        self.conn
            .shm_attach(seg, segment.id, false)?
            .check()
            .context("attaching the shared segment (is the X server on this machine?)")?;
        // Both sides are attached: Linux keeps it until the last detach, so
        // a crash leaves no segment behind.
        segment.remove_when_detached();
        self.segments.push((Arc::new(segment), seg));
        Ok(self.segments.len() - 1)
    }

    pub fn size(&self) -> (u32, u32) {
        (self.width as u32, self.height as u32)
    }

    /// Waits until something is drawn or the pointer moves, or `deadline`.
    /// The pointer is looked at every `pointer_every` (XFixes tells of
    /// shape changes but not of motion).
    pub fn wait(&mut self, deadline: Instant, pointer_every: Duration) -> Result<Change> {
        loop {
            if self.drain_damage()? {
                return Ok(Change::Drawn);
            }
            if self.show_pointer && self.pointer_moved()? {
                return Ok(Change::Drawn);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Change::Nothing);
            }
            let slice = (deadline - now).min(pointer_every);
            super::readable_within(&self.conn, slice)?;
        }
    }

    /// Reads the screen (and draws the pointer on it) into a free shared
    /// segment.
    pub fn grab(&mut self) -> Result<Frame> {
        let len = self.frame_len();
        let free = self
            .segments
            .iter()
            .position(|(seg, _)| Arc::strong_count(seg) == 1);
        let at = match free {
            Some(at) => Some(at),
            None if self.segments.len() < MAX_SEGMENTS => Some(self.add_segment()?),
            None => None,
        };
        let cursor = if self.show_pointer {
            let c = self.conn.xfixes_get_cursor_image()?.reply()?;
            self.pointer = Some(PointerState {
                x: c.x,
                y: c.y,
                serial: c.cursor_serial,
            });
            Some(c)
        } else {
            None
        };
        let (w, h) = (self.width as usize, self.height as usize);
        let Some(at) = at else {
            let mut image = self
                .conn
                .get_image(
                    ImageFormat::Z_PIXMAP,
                    self.root,
                    0,
                    0,
                    self.width,
                    self.height,
                    !0,
                )?
                .reply()
                .context("reading the screen (GetImage)")?
                .data;
            if image.len() < len {
                bail!(
                    "GetImage gave {} bytes for a {len}-byte screen",
                    image.len()
                );
            }
            if let Some(c) = &cursor {
                draw_pointer(&mut image, w, h, c);
            }
            return Ok(Frame::Owned(image));
        };
        let (segment, seg) = &mut self.segments[at];
        self.conn
            .shm_get_image(
                self.root,
                0,
                0,
                self.width,
                self.height,
                !0,
                ImageFormat::Z_PIXMAP.into(),
                *seg,
                0,
            )?
            .reply()
            .context("reading the screen (XShmGetImage)")?;
        let bytes = Arc::get_mut(segment)
            .ok_or_else(|| anyhow!("a free segment was taken"))?
            .bytes_mut();
        if let Some(c) = &cursor {
            draw_pointer(&mut bytes[..len], w, h, c);
        }
        Ok(Frame::Shared(Arc::clone(segment), len))
    }

    /// How many shared segments exist (for tests).
    pub fn segments(&self) -> usize {
        self.segments.len()
    }

    /// The root window's size now (it changes with RandR).
    pub fn current_size(&self) -> Result<(u32, u32)> {
        let g = self.conn.get_geometry(self.root)?.reply()?;
        Ok((g.width as u32, g.height as u32))
    }

    /// Takes every queued event; true when the screen was drawn on. The
    /// damage is cleared, so the next drawing reports again.
    fn drain_damage(&mut self) -> Result<bool> {
        let mut drawn = false;
        while let Some(event) = self.conn.poll_for_event()? {
            if let Event::DamageNotify(_) = event {
                drawn = true;
            }
        }
        if drawn {
            self.conn
                .damage_subtract(self.damage, x11rb::NONE, x11rb::NONE)?;
            self.conn.flush()?;
        }
        Ok(drawn)
    }

    fn pointer_moved(&mut self) -> Result<bool> {
        let c = self.conn.xfixes_get_cursor_image()?.reply()?;
        let now = PointerState {
            x: c.x,
            y: c.y,
            serial: c.cursor_serial,
        };
        Ok(self.pointer.is_some_and(|p| p != now))
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = self.conn.damage_destroy(self.damage);
        // Frames still downstream keep their mappings (Segment's drop).
        for (_, seg) in &self.segments {
            let _ = self.conn.shm_detach(*seg);
        }
        let _ = self.conn.flush();
    }
}

/// Blends the pointer image (premultiplied ARGB) onto a BGRx frame.
fn draw_pointer(frame: &mut [u8], width: usize, height: usize, c: &xfixes::GetCursorImageReply) {
    let (cw, ch) = (c.width as usize, c.height as usize);
    if c.cursor_image.len() < cw * ch {
        return;
    }
    let left = c.x as i64 - c.xhot as i64;
    let top = c.y as i64 - c.yhot as i64;
    for row in 0..ch {
        let y = top + row as i64;
        if y < 0 || y >= height as i64 {
            continue;
        }
        for col in 0..cw {
            let x = left + col as i64;
            if x < 0 || x >= width as i64 {
                continue;
            }
            let argb = c.cursor_image[row * cw + col];
            let a = argb >> 24;
            if a == 0 {
                continue;
            }
            let at = (y as usize * width + x as usize) * 4;
            let px = &mut frame[at..at + 3];
            for (i, shift) in [(0, 0u32), (1, 8), (2, 16)] {
                let src = (argb >> shift) & 0xff;
                let dst = px[i] as u32;
                px[i] = (src + dst * (255 - a) / 255).min(255) as u8;
            }
        }
    }
}

/// A System V shared-memory segment the X server writes the screen into.
pub struct Segment {
    id: u32,
    addr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is owned by this struct; it is written only through
// &mut self (Screen::grab holds the only Arc then) and read through &self.
unsafe impl Send for Segment {}
unsafe impl Sync for Segment {}

impl Segment {
    fn new(len: usize) -> Result<Self> {
        // SAFETY: plain SysV calls; every result is checked.
        unsafe {
            let id = libc::shmget(libc::IPC_PRIVATE, len, libc::IPC_CREAT | 0o600);
            if id < 0 {
                return Err(std::io::Error::last_os_error()).context("shmget");
            }
            let addr = libc::shmat(id, std::ptr::null(), 0);
            if addr as isize == -1 {
                let e = std::io::Error::last_os_error();
                libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
                return Err(e).context("shmat");
            }
            Ok(Segment {
                id: id as u32,
                addr,
                len,
            })
        }
    }

    fn remove_when_detached(&self) {
        // SAFETY: marks our own segment; attached mappings stay valid.
        unsafe {
            libc::shmctl(self.id as i32, libc::IPC_RMID, std::ptr::null_mut());
        }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `addr` maps `len` bytes for as long as self lives.
        unsafe { std::slice::from_raw_parts(self.addr as *const u8, self.len) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and &mut self means no other reader.
        unsafe { std::slice::from_raw_parts_mut(self.addr as *mut u8, self.len) }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: detaching our own mapping and removing our own segment.
        unsafe {
            libc::shmdt(self.addr);
            libc::shmctl(self.id as i32, libc::IPC_RMID, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(w: u16, h: u16, x: i16, y: i16, pixels: Vec<u32>) -> xfixes::GetCursorImageReply {
        xfixes::GetCursorImageReply {
            sequence: 0,
            length: 0,
            x,
            y,
            width: w,
            height: h,
            xhot: 0,
            yhot: 0,
            cursor_serial: 1,
            cursor_image: pixels,
        }
    }

    #[test]
    fn an_opaque_pointer_replaces_the_pixels_and_a_clear_one_leaves_them() {
        let mut frame = vec![10u8; 4 * 4 * 4];
        // Opaque red at (1,1), fully transparent at (2,1).
        let c = cursor(2, 1, 1, 1, vec![0xffff0000, 0x00000000]);
        draw_pointer(&mut frame, 4, 4, &c);
        let at = |x: usize, y: usize| &frame[(y * 4 + x) * 4..(y * 4 + x) * 4 + 3];
        assert_eq!(at(1, 1), &[0, 0, 255]); // BGR
        assert_eq!(at(2, 1), &[10, 10, 10]);
    }

    #[test]
    fn a_pointer_half_off_the_screen_is_clipped() {
        let mut frame = vec![0u8; 2 * 2 * 4];
        let c = cursor(3, 3, 1, 1, vec![0xffffffff; 9]);
        draw_pointer(&mut frame, 2, 2, &c);
        assert_eq!(&frame[12..15], &[255, 255, 255]);
        assert_eq!(&frame[0..3], &[0, 0, 0]);
    }

    /// Paints the whole root window of `display` one colour (0xRRGGBB).
    fn paint(display: &str, rgb: u32) {
        use x11rb::protocol::xproto::{CreateGCAux, Rectangle};
        let (conn, n) = x11rb::connect(Some(display)).expect("connect");
        let root = conn.setup().roots[n].root;
        let gc = conn.generate_id().expect("id");
        conn.create_gc(gc, root, &CreateGCAux::new().foreground(rgb))
            .expect("gc");
        let all = Rectangle {
            x: 0,
            y: 0,
            width: 64,
            height: 48,
        };
        conn.poly_fill_rectangle(root, gc, &[all]).expect("fill");
        conn.get_input_focus().expect("sync").reply().expect("sync");
    }

    #[test]
    fn frames_are_read_in_place_and_a_segment_is_reused_once_dropped() {
        let display =
            crate::desktop::xvfb::VirtualDisplay::start(64, 48, None, Vec::new()).expect("Xvfb");
        let mut screen = Screen::open(&display.name, false).expect("open");
        paint(&display.name, 0x102030);
        let kept = screen.grab().expect("grab");
        assert_eq!(kept.as_ref().len(), 64 * 48 * 4);
        assert_eq!(
            &kept.as_ref()[..3],
            &[0x30, 0x20, 0x10],
            "BGRx of the painted screen"
        );
        paint(&display.name, 0x405060);
        let next = screen.grab().expect("grab");
        assert!(matches!(next, Frame::Shared(..)));
        assert_eq!(
            screen.segments(),
            2,
            "the kept frame's segment is not written over"
        );
        assert_eq!(
            &kept.as_ref()[..3],
            &[0x30, 0x20, 0x10],
            "a held frame does not change"
        );
        assert_eq!(&next.as_ref()[..3], &[0x60, 0x50, 0x40]);
        drop(next);
        let again = screen.grab().expect("grab");
        assert_eq!(
            screen.segments(),
            2,
            "a dropped frame's segment is grabbed into again"
        );
        // Every segment held downstream: the next frame is read over the
        // socket, with the same pixels.
        let held: Vec<Frame> = (0..MAX_SEGMENTS - 2)
            .map(|_| screen.grab().expect("grab"))
            .collect();
        assert_eq!(screen.segments(), MAX_SEGMENTS);
        let over = screen.grab().expect("grab");
        assert!(matches!(over, Frame::Owned(_)));
        assert_eq!(&over.as_ref()[..3], &[0x60, 0x50, 0x40]);
        drop((kept, again, held));
    }
}
