//! Over a real Xvfb with xclip, as another program on the desktop.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::*;
use crate::desktop::xvfb::VirtualDisplay;

fn watch(
    display: &str,
    limits: Limits,
) -> (Arc<X11Clipboard>, mpsc::Receiver<Result<Content, Refusal>>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let clip = X11Clipboard::start(
        display,
        limits,
        Box::new(move |c| {
            let _ = tx.lock().unwrap().send(c);
        }),
    )
    .expect("clipboard");
    (clip, rx)
}

/// `xclip -selection clipboard` owning `bytes` as `target` (it stays in the
/// background serving them until someone else takes the selection).
fn xclip_copy(display: &str, target: &str, bytes: &[u8]) {
    let mut child = Command::new("xclip")
        .args(["-selection", "clipboard", "-t", target, "-i"])
        .env("DISPLAY", display)
        .stdin(Stdio::piped())
        .spawn()
        .expect("xclip (make test installs it)");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    child.wait().unwrap();
}

fn xclip_paste(display: &str, target: &str) -> Vec<u8> {
    let out = Command::new("xclip")
        .args(["-selection", "clipboard", "-t", target, "-o"])
        .env("DISPLAY", display)
        .output()
        .expect("xclip");
    assert!(
        out.status.success(),
        "xclip -o: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn copies_on_the_desktop_are_heard_and_ours_are_pasted() {
    let vd = VirtualDisplay::start(64, 48, None, Vec::new()).expect("Xvfb");
    let (clip, copies) = watch(&vd.name, Limits::default());
    let text = "héllo, мир, 世界 ✓";
    xclip_copy(&vd.name, "UTF8_STRING", text.as_bytes());
    let got = copies
        .recv_timeout(Duration::from_secs(5))
        .expect("a copy heard");
    assert_eq!(got, Ok(Content::Text(text.into())));

    clip.set(Content::Text("from the browser ✓".into()))
        .unwrap();
    assert_eq!(
        xclip_paste(&vd.name, "UTF8_STRING"),
        "from the browser ✓".as_bytes()
    );
    assert!(
        copies.recv_timeout(Duration::from_millis(300)).is_err(),
        "our own copy is not heard back as the desktop's"
    );
    // What a Latin-1-only client asks for, and the list of what we give.
    clip.set(Content::Text("café".into())).unwrap();
    assert_eq!(xclip_paste(&vd.name, "STRING"), b"caf\xe9");
    let targets = String::from_utf8(xclip_paste(&vd.name, "TARGETS")).unwrap();
    assert!(
        targets.contains("UTF8_STRING") && targets.contains("STRING"),
        "{targets}"
    );

    let png = [b"\x89PNG\r\n\x1a\n".as_slice(), &[7u8; 1000]].concat();
    clip.set(Content::Png(png.clone())).unwrap();
    assert_eq!(xclip_paste(&vd.name, "image/png"), png);
    xclip_copy(&vd.name, "image/png", &png);
    let got = copies
        .recv_timeout(Duration::from_secs(5))
        .expect("an image copy heard");
    assert_eq!(got, Ok(Content::Png(png)));
}

#[test]
fn large_copies_come_in_pieces_and_too_large_ones_are_refused() {
    let vd = VirtualDisplay::start(64, 48, None, Vec::new()).expect("Xvfb");
    let limits = Limits {
        text: 6 << 20,
        image: 1 << 20,
    };
    let (_clip, copies) = watch(&vd.name, limits);
    // Past xclip's one-request size: it sends INCR pieces.
    let big: String = "oriel ✓ 世界 ".repeat(300_000);
    assert!(big.len() > 4 << 20 && big.len() < 6 << 20);
    xclip_copy(&vd.name, "UTF8_STRING", big.as_bytes());
    let got = copies
        .recv_timeout(Duration::from_secs(10))
        .expect("a large copy heard");
    assert!(
        got == Ok(Content::Text(big)),
        "the large copy arrives whole"
    );

    let image = [b"\x89PNG\r\n\x1a\n".as_slice(), &vec![1u8; 2 << 20]].concat();
    xclip_copy(&vd.name, "image/png", &image);
    let got = copies
        .recv_timeout(Duration::from_secs(10))
        .expect("an answer");
    assert_eq!(got, Err(Refusal::TooLarge));
}
