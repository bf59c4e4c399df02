//! The uinput backend against a real kernel. The kernels of our build
//! machines have no uinput module, so these tests are `#[ignore]`d on the
//! host and `vm/run-uinput-tests.sh` runs them with `--ignored` inside qemu,
//! on Debian's kernel, with this test binary as the only program.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use evdev::{Device, EventType};
use oriel_input::backend::Backend;
use oriel_input::gamepad::{self, PadEvent};
use oriel_input::protocol::{encode, InputMessage, MouseButton};
use oriel_input::roles::Role;
use oriel_input::service;
use oriel_input::uinput::{self, Uinput};

/// Opens the event device called `name`, waiting for its node to appear.
fn find(name: &str) -> Device {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        for (_, dev) in evdev::enumerate() {
            if dev.name() == Some(name) {
                return dev;
            }
        }
        assert!(Instant::now() < deadline, "no input device named {name:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn gone(name: &str) -> bool {
    evdev::enumerate().all(|(_, d)| d.name() != Some(name))
}

/// Reads events (without SYN) until `n` arrived or 2 s passed.
fn read(dev: &mut Device, n: usize) -> Vec<(u16, u16, i32)> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while out.len() < n && Instant::now() < deadline {
        if let Ok(events) = dev.fetch_events() {
            for e in events {
                if e.event_type() != EventType::SYNCHRONIZATION {
                    out.push((e.event_type().0, e.code(), e.value()));
                }
            }
        }
    }
    out
}

fn nonblocking(dev: &Device) {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fd = dev.as_raw_fd();
        let flags = libc_fcntl(fd, 3 /* F_GETFL */, 0);
        libc_fcntl(
            fd,
            4,              /* F_SETFL */
            flags | 0o4000, /* O_NONBLOCK */
        );
    }
}

extern "C" {
    #[link_name = "fcntl"]
    fn libc_fcntl(fd: i32, cmd: i32, arg: i32) -> i32;
}

#[test]
#[ignore = "needs /dev/uinput: vm/run-uinput-tests.sh runs it in qemu"]
fn keyboard_mouse_pointer_and_wheel_read_back_exactly() {
    let mut b = Uinput::open().expect("uinput");
    let mut kbd = find(uinput::KEYBOARD_NAME);
    let mut mouse = find(uinput::MOUSE_NAME);
    let mut ptr = find(uinput::POINTER_NAME);
    for d in [&kbd, &mouse, &ptr] {
        nonblocking(d);
    }
    b.key(30, true).unwrap();
    b.key(30, false).unwrap();
    assert_eq!(read(&mut kbd, 2), vec![(1, 30, 1), (1, 30, 0)]);

    b.pointer_rel(-5, 7).unwrap();
    b.button(MouseButton::Right, true).unwrap();
    b.button(MouseButton::Right, false).unwrap();
    // 1.5 notches down, then half a notch more: hi-res every time, whole
    // notches when they add up (evdev's wheel is positive upwards).
    b.wheel(0, 180).unwrap();
    b.wheel(0, 60).unwrap();
    assert_eq!(
        read(&mut mouse, 8),
        vec![
            (2, 0, -5),
            (2, 1, 7),
            (1, 0x111, 1),
            (1, 0x111, 0),
            (2, 0x0b, -180),
            (2, 0x08, -1),
            (2, 0x0b, -60),
            (2, 0x08, -1)
        ]
    );
    let abs = ptr
        .get_absinfo()
        .unwrap()
        .map(|(c, i)| (c.0, i.minimum(), i.maximum()))
        .collect::<Vec<_>>();
    assert!(
        abs.contains(&(0, 0, 65535)) && abs.contains(&(1, 0, 65535)),
        "{abs:?}"
    );
    b.pointer_abs(1000, 65535).unwrap();
    assert_eq!(read(&mut ptr, 2), vec![(3, 0, 1000), (3, 1, 65535)]);
}

#[test]
#[ignore = "needs /dev/uinput: vm/run-uinput-tests.sh runs it in qemu"]
fn two_pads_for_two_slots_with_xbox_layout_and_removal() {
    let mut b = Uinput::open().expect("uinput");
    b.gamepad_add(2).unwrap();
    b.gamepad_add(3).unwrap();
    let mut p2 = find(&uinput::gamepad_name(2));
    let mut p3 = find(&uinput::gamepad_name(3));
    for p in [&p2, &p3] {
        nonblocking(p);
        let id = p.input_id();
        assert_eq!(
            (id.vendor(), id.product()),
            (gamepad::VENDOR, gamepad::PRODUCT)
        );
        let keys: BTreeSet<u16> = p.supported_keys().unwrap().iter().map(|k| k.0).collect();
        assert_eq!(keys, gamepad::BUTTONS.iter().copied().collect());
        let mut axes: Vec<(u16, i32, i32)> = p
            .get_absinfo()
            .unwrap()
            .map(|(c, i)| (c.0, i.minimum(), i.maximum()))
            .collect();
        axes.sort();
        let mut want = gamepad::AXES.to_vec();
        want.sort();
        assert_eq!(axes, want);
    }
    b.gamepad(
        2,
        PadEvent::Key {
            code: 0x130,
            pressed: true,
        },
    )
    .unwrap();
    b.gamepad(
        3,
        PadEvent::Abs {
            code: 1,
            value: -32768,
        },
    )
    .unwrap();
    assert_eq!(
        read(&mut p2, 2),
        vec![(1, 0x130, 1)],
        "slot 2 sees only its own button"
    );
    assert_eq!(
        read(&mut p3, 2),
        vec![(3, 1, -32768)],
        "slot 3 sees only its own axis"
    );
    b.gamepad_remove(2);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gone(&uinput::gamepad_name(2)) {
        assert!(
            Instant::now() < deadline,
            "pad 2 still present after removal"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!gone(&uinput::gamepad_name(3)), "pad 3 stays");
}

#[test]
#[ignore = "needs /dev/uinput: vm/run-uinput-tests.sh runs it in qemu"]
fn a_leaving_client_releases_its_held_keys() {
    let h = service::spawn(Box::new(Uinput::open().expect("uinput"))).unwrap();
    let mut kbd = find(uinput::KEYBOARD_NAME);
    nonblocking(&kbd);
    h.join(1, Role::Controller);
    h.data(1, &encode(&InputMessage::KeyDown("ShiftLeft".into())));
    assert_eq!(read(&mut kbd, 1), vec![(1, 42, 1)]);
    h.leave(1);
    assert_eq!(
        read(&mut kbd, 1),
        vec![(1, 42, 0)],
        "held key released on leave"
    );
}
