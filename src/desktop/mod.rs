//! The desktop being shared: which X display, starting our own when there
//! is none, and surviving it going away (X11); a Wayland desktop through
//! the ScreenCast portal (`wayland`). The two stay apart.

pub mod child;
pub mod clipboard;
pub mod pointer;
pub mod sound;
pub mod supervisor;
pub mod uploads;
pub mod wayland;
pub mod x11;
pub mod xlib_guard;
pub mod xvfb;
