//! Fuzz target `token`: see `src/token.rs` for what it checks.
fn main() {
    afl::fuzz!(|data: &[u8]| oriel_fuzz::token::check(data));
}
