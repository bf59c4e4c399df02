//! Fuzz target `signalling`: see `src/signalling.rs` for what it checks.
fn main() {
    afl::fuzz!(|data: &[u8]| oriel_fuzz::signalling::check(data));
}
