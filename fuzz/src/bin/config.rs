//! Fuzz target `config`: see `src/config.rs` for what it checks.
fn main() {
    afl::fuzz!(|data: &[u8]| oriel_fuzz::config::check(data));
}
