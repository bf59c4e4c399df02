//! Over a real Xvfb, with xterm and xdotool as the desktop's programs.

use std::process::Command;
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use super::*;
use crate::desktop::xvfb::VirtualDisplay;

fn watch(display: &str) -> (Arc<X11Pointer>, mpsc::Receiver<PointerEvent>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let p = X11Pointer::start(
        display,
        Box::new(move |e| {
            let _ = tx.lock().unwrap().send(e);
        }),
    )
    .expect("pointer");
    (p, rx)
}

fn xdotool(display: &str, args: &[&str]) {
    let st = Command::new("xdotool")
        .args(args)
        .env("DISPLAY", display)
        .status()
        .expect("xdotool (make test installs it)");
    assert!(st.success(), "xdotool {args:?}");
}

/// The next event `keep` picks, within 10 s.
fn next<T>(rx: &mpsc::Receiver<PointerEvent>, keep: impl Fn(&PointerEvent) -> Option<T>) -> T {
    let until = Instant::now() + Duration::from_secs(10);
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(e) => {
                if let Some(t) = keep(&e) {
                    return t;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no such pointer event within 10 s");
}

#[test]
fn shapes_are_told_as_they_change_and_places_only_while_wanted() {
    let vd = VirtualDisplay::start(320, 240, None, Vec::new()).expect("Xvfb");
    let (pointer, rx) = watch(&vd.name);
    let first = next(&rx, |e| match e {
        PointerEvent::Shape(s) => Some(s.clone()),
        _ => None,
    });
    assert!(
        first.width > 0 && first.rgba.len() == first.width as usize * first.height as usize * 4
    );

    // Nobody wants the place: moving tells nothing.
    xdotool(&vd.name, &["mousemove", "300", "200"]);
    std::thread::sleep(MOTION_EVERY * 6);
    assert!(
        rx.try_iter()
            .all(|e| !matches!(e, PointerEvent::Moved { .. })),
        "a move told while nobody wanted it"
    );
    pointer.want_motion(true);
    xdotool(&vd.name, &["mousemove", "17", "23"]);
    let at = next(&rx, |e| match *e {
        PointerEvent::Moved { x, y } if (x, y) == (17, 23) => Some((x, y)),
        _ => None,
    });
    assert_eq!(at, (17, 23));

    // Into an xterm: its I-beam (cursor-font cursors have no name without
    // a cursor theme, so it is told by its shape: tall and narrow).
    let mut xterm = Command::new("xterm")
        .args(["-geometry", "20x5+0+0"])
        .env("DISPLAY", &vd.name)
        .spawn()
        .expect("xterm (make test installs it)");
    let ibeam = (0..50)
        .find_map(|_| {
            xdotool(&vd.name, &["mousemove", "30", "30"]);
            let got = rx.recv_timeout(Duration::from_millis(200)).ok()?;
            match got {
                PointerEvent::Shape(s) if s.serial != first.serial => Some(s),
                _ => None,
            }
        })
        .expect("the pointer took xterm's shape");
    assert!(
        ibeam.width * 3 / 2 < ibeam.height,
        "an I-beam is tall and narrow: {}x{}",
        ibeam.width,
        ibeam.height
    );
    assert!(
        first.width * 3 / 2 >= first.height,
        "the root window's pointer is not: {}x{}",
        first.width,
        first.height
    );
    assert!(ibeam.hot_x < ibeam.width && ibeam.hot_y < ibeam.height);
    assert!(!ibeam.hidden && ibeam.rgba.chunks(4).any(|p| p[3] == 255));
    let _ = xterm.kill();
    let _ = xterm.wait();
}

#[test]
fn premultiplied_words_become_straight_rgba() {
    // Opaque red, half-transparent white (premultiplied 0x80808080), clear.
    let s = shape_of(
        7,
        "x".into(),
        (3, 1),
        (9, 0),
        &[0xffff_0000, 0x8080_8080, 0],
    );
    assert_eq!(s.rgba, [255, 0, 0, 255, 255, 255, 255, 128, 0, 0, 0, 0]);
    assert!(!s.hidden);
    assert_eq!(s.hot_x, 2, "a hotspot outside the image is clamped");
    let clear = shape_of(8, String::new(), (2, 2), (0, 0), &[0; 4]);
    assert!(clear.hidden, "an all-transparent pointer is a hidden one");
    let huge = shape_of(9, String::new(), (MAX_SIDE + 1, 1), (0, 0), &[0; 257]);
    assert!(
        huge.rgba.is_empty() && !huge.hidden,
        "too large: not sent, not hidden"
    );
    let short = shape_of(10, String::new(), (4, 4), (0, 0), &[0; 3]);
    assert!(
        short.rgba.is_empty(),
        "a reply shorter than its size is not read past"
    );
}
