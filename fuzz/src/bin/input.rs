//! Fuzz target `input`: see `src/input.rs` for what it checks.
fn main() {
    afl::fuzz!(|data: &[u8]| oriel_fuzz::input::check(data));
}
