// Export `XOpenDisplay` from the binary, so that GStreamer's ximagesrc binds
// to oriel's wrapper (src/desktop/xlib_guard.rs) and a dead X server cannot
// exit the process.
fn main() {
    println!("cargo:rustc-link-arg-bins=-Wl,--export-dynamic-symbol=XOpenDisplay");
    println!("cargo:rerun-if-changed=build.rs");
}
