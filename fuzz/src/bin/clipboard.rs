//! Fuzz target `clipboard`: see `src/clipboard.rs` for what it checks.
fn main() {
    afl::fuzz!(|data: &[u8]| oriel_fuzz::clipboard::check(data));
}
