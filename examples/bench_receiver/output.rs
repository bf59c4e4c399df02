//! Output: the JSON event lines on stdout, and the `ms` values they carry.

use std::io::Write;
use std::time::Instant;

/// One JSON line on stdout. Called from tokio tasks and GStreamer streaming
/// threads alike; the lock keeps lines whole.
pub fn emit(v: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    // A closed stdout means nobody listens any more; nothing useful to do.
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

pub fn ms_since(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 10_000.0).round() / 10.0
}
