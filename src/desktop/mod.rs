//! The desktop being shared: which X display, starting our own when there
//! is none, and surviving it going away.

pub mod supervisor;
pub mod x11;
pub mod xlib_guard;
pub mod xvfb;
