//! The desktop being shared: which X display, and starting our own when
//! there is none.

pub mod xvfb;
