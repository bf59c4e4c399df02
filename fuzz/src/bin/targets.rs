//! Prints every fuzz target as `name<TAB>parser`, for scripts/fuzz.sh: the
//! list lives once, in `oriel_fuzz::TARGETS`.
fn main() {
    for (name, _, parser) in oriel_fuzz::TARGETS {
        println!("{name}\t{parser}");
    }
}
