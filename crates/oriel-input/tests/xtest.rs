//! The XTest backend against a real X server (Xvfb): the pointer lands
//! where asked, buttons and keys are seen as pressed and released by the
//! server.

use std::time::{Duration, Instant};

use oriel_input::backend::Backend;
use oriel_input::protocol::MouseButton;
use oriel_input::xtest::XTest;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::ConnectionExt;

mod common;
use common::{xvfb, Xvfb};
use std::process::{Command, Stdio};

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn pointer_buttons_and_keys_reach_the_x_server() {
    let x = xvfb();
    let mut backend = XTest::connect(&x.1).expect("XTest");
    let (conn, screen) = x11rb::connect(Some(&x.1)).unwrap();
    let root = conn.setup().roots[screen].root;
    let pointer = || {
        let r = conn.query_pointer(root).unwrap().reply().unwrap();
        (r.root_x, r.root_y, u16::from(r.mask))
    };

    // Normalised coordinates: the middle and the far corner.
    backend.pointer_abs(32768, 32768).unwrap();
    wait_until("pointer at the centre", || {
        let (x, y, _) = pointer();
        (639..=640).contains(&x) && (359..=360).contains(&y)
    });
    backend.pointer_abs(65535, 65535).unwrap();
    wait_until("pointer at the corner", || {
        pointer().0 == 1279 && pointer().1 == 719
    });
    backend.pointer_rel(-100, -50).unwrap();
    wait_until("relative motion", || {
        pointer().0 == 1179 && pointer().1 == 669
    });

    // Button 1 is mask bit 8 (Button1Mask = 256).
    backend.button(MouseButton::Left, true).unwrap();
    wait_until("left button down", || pointer().2 & 256 != 0);
    backend.button(MouseButton::Left, false).unwrap();
    wait_until("left button up", || pointer().2 & 256 == 0);

    // KEY_A (evdev 30) is X keycode 38.
    let pressed = |code: u8| {
        let keys = conn.query_keymap().unwrap().reply().unwrap().keys;
        keys[(code / 8) as usize] & (1 << (code % 8)) != 0
    };
    backend.key(30, true).unwrap();
    wait_until("KEY_A down", || pressed(38));
    backend.key(30, false).unwrap();
    wait_until("KEY_A up", || !pressed(38));
}

/// An Xvfb on a fixed display number, for a test that restarts it under
/// the same name. The number is far above those `-displayfd` hands out
/// (the lowest free one): otherwise a test running in parallel can take the
/// name in the moment it is free, and the "restarted" server is its.
fn xvfb_at(display: &str, size: &str) -> Xvfb {
    let child = Command::new("Xvfb")
        .args([
            display,
            "-screen",
            "0",
            size,
            "-nolisten",
            "tcp",
            "-noreset",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb installed (make test installs it)");
    Xvfb(child, display.to_string())
}

#[test]
fn reconnects_when_the_server_comes_back_under_the_same_name() {
    let display = format!(":{}", 600 + std::process::id() % 300);
    let mut first = xvfb_at(&display, "1280x720x24");
    wait_until("the first server", || {
        x11rb::connect(Some(&display)).is_ok()
    });
    let mut backend = XTest::connect(&display).expect("XTest");
    backend.pointer_abs(0, 0).unwrap();
    let _ = first.0.kill();
    let _ = first.0.wait();
    // While the display is away, events fail instead of hanging.
    assert!(backend.pointer_abs(100, 100).is_err());

    // A new server on the same display, at another size.
    let mut again = xvfb_at(&display, "640x480x24");
    let mut conn = None;
    wait_until("the new server", || {
        assert!(
            matches!(again.0.try_wait(), Ok(None)),
            "the new Xvfb on {display} exited"
        );
        conn = x11rb::connect(Some(&display)).ok();
        conn.is_some()
    });
    let (conn, screen) = conn.unwrap();
    let root = conn.setup().roots[screen].root;
    // The far corner of the new, smaller screen: the size was read again.
    wait_until("XTest back on the new server", || {
        std::thread::sleep(Duration::from_millis(100));
        backend.pointer_abs(65535, 65535).is_ok() && {
            let r = conn.query_pointer(root).unwrap().reply().unwrap();
            (r.root_x, r.root_y) == (639, 479)
        }
    });
}

/// A writer that takes `ok` writes, then answers ENODEV like the fd of a
/// uinput device the kernel destroyed.
struct Vanishing {
    ok: usize,
}

impl std::io::Write for Vanishing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.ok == 0 {
            return Err(std::io::Error::from_raw_os_error(19)); // ENODEV
        }
        self.ok -= 1;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn xtest_takes_over_when_the_devices_vanish() {
    use oriel_input::failover::Failover;
    use oriel_input::record::Recorder;

    let x = xvfb();
    let display = x.1.clone();
    // The recording sink stands in for uinput (no uinput on this kernel):
    // two events go in, then its device is gone.
    let open_xtest: oriel_input::failover::Opener =
        Box::new(move || Ok(Box::new(XTest::connect(&display)?) as Box<dyn Backend>));
    let mut backend = Failover::new(
        Box::new(Recorder::new(Vanishing { ok: 2 })),
        Some((format!("XTest on {}", x.1), open_xtest)),
        None,
    );
    let health = backend.health();
    assert_eq!((health.backend(), health.gamepads()), ("record", true));
    backend.pointer_abs(0, 0).unwrap();
    backend.pointer_abs(1, 1).unwrap();
    // The third event fails on the sink and lands through XTest instead.
    backend.pointer_abs(32768, 32768).unwrap();
    let (conn, screen) = x11rb::connect(Some(&x.1)).unwrap();
    let root = conn.setup().roots[screen].root;
    wait_until("pointer at the centre through XTest", || {
        let r = conn.query_pointer(root).unwrap().reply().unwrap();
        (639..=640).contains(&r.root_x) && (359..=360).contains(&r.root_y)
    });
    assert_eq!((health.backend(), health.gamepads()), ("xtest", false));
    assert_eq!(
        health.failures.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let problem = health.problem().unwrap_or_default();
    assert!(
        problem.contains("No such device") && problem.contains("gamepads are unavailable"),
        "{problem}"
    );
    // Gamepads are refused by XTest, clearly, and nothing panics.
    assert!(backend.gamepad_add(2).is_err());
}
