//! The desktop's pointer as the pages draw it themselves: its shapes (an
//! image, a hotspot, a name) and its place. Platform-neutral; X11 watches
//! it in `x11::pointer`. The stream then carries no pointer, so the
//! controller's pointer moves with the page's own mouse (no glass-to-glass
//! delay) and viewers draw the remote one where it is.

use std::sync::Arc;

/// Larger images are not sent (X servers cap cursors at 64 or 256 pixels;
/// browsers ignore CSS cursors over 128).
pub const MAX_SIDE: u16 = 256;

/// One shape of the pointer, as the pages draw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// The server's serial for this image: the pages cache by it.
    pub serial: u32,
    /// The cursor's name where the program gave one (`xterm`, `left_ptr`).
    pub name: String,
    pub width: u16,
    pub height: u16,
    pub hot_x: u16,
    pub hot_y: u16,
    /// Straight (not premultiplied) RGBA rows; empty when too large.
    pub rgba: Vec<u8>,
    /// Every pixel transparent: the program hid the pointer (games do).
    pub hidden: bool,
}

/// What the watcher tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PointerEvent {
    /// The pointer took this shape.
    Shape(Arc<Shape>),
    /// The pointer is here now (root coordinates).
    Moved { x: i16, y: i16 },
}
