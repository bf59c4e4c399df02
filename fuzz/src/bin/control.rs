//! Fuzz target `control`: see `src/control.rs` for what it checks.
fn main() {
    afl::fuzz!(|data: &[u8]| oriel_fuzz::control::check(data));
}
