//! Fuzz target `links`: see `src/links.rs` for what it checks.
fn main() {
    afl::fuzz!(|data: &[u8]| oriel_fuzz::links::check(data));
}
