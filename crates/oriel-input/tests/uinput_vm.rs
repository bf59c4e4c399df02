//! The uinput backend against a real kernel. The kernels of our build
//! machines have no uinput module, so these tests are `#[ignore]`d on the
//! host (they show up as "ignored", never as passed) and
//! `vm/run-uinput-tests.sh` runs them with `--ignored --test-threads=1`
//! inside qemu, on Debian's kernel, with this test binary as the only
//! program. One thread: every test creates devices with the same names.
//!
//! Each test opens the reader before emitting, because evdev only queues
//! events for handles that are already open, and then checks that exactly
//! the emitted events arrived: the expected ones, then nothing more. The
//! last two take the devices away mid-session (`/dev/uinput` removed,
//! the devices destroyed under the backend) and check what `Failover` does.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use evdev::{Device, EventType, PropType};
use oriel_input::backend::Backend;
use oriel_input::failover::{Failover, Opener};
use oriel_input::gamepad::{self, PadEvent};
use oriel_input::keymap;
use oriel_input::protocol::{encode, InputMessage, MouseButton};
use oriel_input::roles::Role;
use oriel_input::service;
use oriel_input::uinput::{self, Uinput};

const EV_KEY: u16 = 1;
const EV_REL: u16 = 2;
const EV_ABS: u16 = 3;

/// Opens the event device called `name`, waiting for its node: the kernel
/// creates it asynchronously after UI_DEV_CREATE returns.
fn find(name: &str) -> (PathBuf, Device) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        for (path, dev) in evdev::enumerate() {
            if dev.name() == Some(name) {
                dev.set_nonblocking(true).expect("O_NONBLOCK");
                return (path, dev);
            }
        }
        assert!(Instant::now() < deadline, "no input device named {name:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn present(name: &str) -> bool {
    evdev::enumerate().any(|(_, d)| d.name() == Some(name))
}

/// Reads events (without SYN) until `n` arrived or 2 s passed, then makes
/// sure nothing else follows. uinput writes reach readers' queues before
/// write() returns, so a short quiet period is enough.
fn read_exactly(dev: &mut Device, n: usize) -> Vec<(u16, u16, i32)> {
    let mut out = Vec::new();
    let take = |dev: &mut Device, out: &mut Vec<_>| {
        if let Ok(events) = dev.fetch_events() {
            for e in events {
                if e.event_type() != EventType::SYNCHRONIZATION {
                    out.push((e.event_type().0, e.code(), e.value()));
                }
            }
        }
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while out.len() < n && Instant::now() < deadline {
        take(dev, &mut out);
        std::thread::sleep(Duration::from_millis(5));
    }
    let quiet = Instant::now() + Duration::from_millis(200);
    while Instant::now() < quiet {
        take(dev, &mut out);
        std::thread::sleep(Duration::from_millis(10));
    }
    out
}

fn absinfo(dev: &Device) -> Vec<(u16, i32, i32)> {
    let mut v: Vec<_> = dev
        .get_absinfo()
        .expect("EVIOCGABS")
        .map(|(c, i)| (c.0, i.minimum(), i.maximum()))
        .collect();
    v.sort();
    v
}

#[test]
#[ignore = "needs /dev/uinput: vm/run-uinput-tests.sh runs it in qemu"]
fn keyboard_keys_and_text_read_back_exactly() {
    let mut b = Uinput::open().expect("uinput");
    let (_, mut kbd) = find(uinput::KEYBOARD_NAME);
    let keys: Vec<u16> = kbd
        .supported_keys()
        .expect("keys")
        .iter()
        .map(|k| k.0)
        .collect();
    assert_eq!(keys, keymap::all_evdev_keys(), "declares every mapped key");

    b.key(30, true).unwrap();
    b.key(30, false).unwrap();
    assert_eq!(
        read_exactly(&mut kbd, 2),
        vec![(EV_KEY, 30, 1), (EV_KEY, 30, 0)]
    );

    // US layout: 'a' plain, 'A' and '!' with left shift around them.
    b.text("aA!").unwrap();
    assert_eq!(
        read_exactly(&mut kbd, 10),
        vec![
            (EV_KEY, 30, 1),
            (EV_KEY, 30, 0),
            (EV_KEY, 42, 1),
            (EV_KEY, 30, 1),
            (EV_KEY, 30, 0),
            (EV_KEY, 42, 0),
            (EV_KEY, 42, 1),
            (EV_KEY, 2, 1),
            (EV_KEY, 2, 0),
            (EV_KEY, 42, 0),
        ]
    );
    // No key for it on a US layout: an error, and nothing typed.
    assert!(b.text("é").is_err());
    assert_eq!(read_exactly(&mut kbd, 0), vec![]);
}

#[test]
#[ignore = "needs /dev/uinput: vm/run-uinput-tests.sh runs it in qemu"]
fn mouse_buttons_and_wheel_read_back_exactly() {
    let mut b = Uinput::open().expect("uinput");
    let (_, mut mouse) = find(uinput::MOUSE_NAME);
    b.pointer_rel(-5, 7).unwrap();
    b.button(MouseButton::Right, true).unwrap();
    b.button(MouseButton::Right, false).unwrap();
    b.button(MouseButton::Back, true).unwrap();
    // 1.5 notches down, then half a notch more: hi-res every time, whole
    // notches when they add up. evdev's wheel is positive upwards, the
    // protocol's downwards; horizontal is positive right in both.
    b.wheel(0, 180).unwrap();
    b.wheel(0, 60).unwrap();
    b.wheel(-120, 0).unwrap();
    assert_eq!(
        read_exactly(&mut mouse, 11),
        vec![
            (EV_REL, 0x00, -5), // REL_X
            (EV_REL, 0x01, 7),  // REL_Y
            (EV_KEY, 0x111, 1), // BTN_RIGHT
            (EV_KEY, 0x111, 0),
            (EV_KEY, 0x113, 1),   // BTN_SIDE
            (EV_REL, 0x0b, -180), // REL_WHEEL_HI_RES
            (EV_REL, 0x08, -1),   // REL_WHEEL
            (EV_REL, 0x0b, -60),  // REL_WHEEL_HI_RES
            (EV_REL, 0x08, -1),   // REL_WHEEL
            (EV_REL, 0x0c, -120), // REL_HWHEEL_HI_RES
            (EV_REL, 0x06, -1),   // REL_HWHEEL
        ]
    );
}

#[test]
#[ignore = "needs /dev/uinput: vm/run-uinput-tests.sh runs it in qemu"]
fn absolute_pointer_reads_back_exactly() {
    let mut b = Uinput::open().expect("uinput");
    let (_, mut ptr) = find(uinput::POINTER_NAME);
    assert_eq!(absinfo(&ptr), vec![(0, 0, 65535), (1, 0, 65535)]);
    assert!(ptr.properties().contains(PropType::POINTER));
    b.pointer_abs(1000, 65535).unwrap();
    b.pointer_abs(0, 0).unwrap();
    assert_eq!(
        read_exactly(&mut ptr, 4),
        vec![
            (EV_ABS, 0, 1000),
            (EV_ABS, 1, 65535),
            (EV_ABS, 0, 0),
            (EV_ABS, 1, 0)
        ]
    );
}

#[test]
#[ignore = "needs /dev/uinput: vm/run-uinput-tests.sh runs it in qemu"]
fn two_pads_for_two_slots_with_xbox_layout_and_removal() {
    let mut b = Uinput::open().expect("uinput");
    b.gamepad_add(2).unwrap();
    b.gamepad_add(3).unwrap();
    let (path2, mut p2) = find(&uinput::gamepad_name(2));
    let (_, mut p3) = find(&uinput::gamepad_name(3));
    for p in [&p2, &p3] {
        let id = p.input_id();
        assert_eq!(
            (id.vendor(), id.product()),
            (gamepad::VENDOR, gamepad::PRODUCT)
        );
        let keys: BTreeSet<u16> = p.supported_keys().unwrap().iter().map(|k| k.0).collect();
        assert_eq!(keys, gamepad::BUTTONS.iter().copied().collect());
        let mut want = gamepad::AXES.to_vec();
        want.sort();
        assert_eq!(absinfo(p), want);
    }
    b.gamepad(
        2,
        PadEvent::Key {
            code: 0x130, // BTN_SOUTH
            pressed: true,
        },
    )
    .unwrap();
    b.gamepad(
        3,
        PadEvent::Abs {
            code: 1, // ABS_Y
            value: -32768,
        },
    )
    .unwrap();
    b.gamepad(
        2,
        PadEvent::Abs {
            code: 0x11, // ABS_HAT0Y
            value: 1,
        },
    )
    .unwrap();
    assert_eq!(
        read_exactly(&mut p2, 2),
        vec![(EV_KEY, 0x130, 1), (EV_ABS, 0x11, 1)],
        "slot 2 sees only its own events"
    );
    assert_eq!(
        read_exactly(&mut p3, 1),
        vec![(EV_ABS, 1, -32768)],
        "slot 3 sees only its own event"
    );

    // An open handle does not keep a uinput device alive; close ours anyway.
    drop(p2);
    b.gamepad_remove(2);
    let deadline = Instant::now() + Duration::from_secs(5);
    while present(&uinput::gamepad_name(2)) || Path::new(&path2).exists() {
        assert!(
            Instant::now() < deadline,
            "pad 2 ({}) still present after removal",
            path2.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(present(&uinput::gamepad_name(3)), "pad 3 stays");
    assert!(b.gamepad(2, PadEvent::Abs { code: 0, value: 0 }).is_err());
}

#[test]
#[ignore = "needs /dev/uinput: vm/run-uinput-tests.sh runs it in qemu"]
fn a_leaving_client_releases_its_held_keys() {
    let h = service::spawn(Box::new(Uinput::open().expect("uinput"))).unwrap();
    let (_, mut kbd) = find(uinput::KEYBOARD_NAME);
    h.join(1, Role::Controller);
    h.data(1, &encode(&InputMessage::KeyDown("ShiftLeft".into())));
    assert_eq!(read_exactly(&mut kbd, 1), vec![(EV_KEY, 42, 1)]);
    h.leave(1);
    assert_eq!(
        read_exactly(&mut kbd, 1),
        vec![(EV_KEY, 42, 0)],
        "held key released on leave"
    );
}

// ------------------------------------------------------------ the devices go

/// Destroys every uinput device this process holds, as if the kernel took
/// them away: UI_DEV_DESTROY on each fd open on /dev/uinput. The event
/// nodes go, and every later write on those fds fails (EINVAL).
fn destroy_our_devices() -> usize {
    const UI_DEV_DESTROY: libc::c_ulong = 0x5502; // _IO('U', 2)
    let mut n = 0;
    for e in std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd") {
        let e = e.expect("fd entry");
        let Ok(target) = std::fs::read_link(e.path()) else {
            continue;
        };
        if !target.to_string_lossy().starts_with("/dev/uinput") {
            continue;
        }
        let fd: i32 = e.file_name().to_string_lossy().parse().expect("fd number");
        // SAFETY: an ioctl without argument on an fd this process owns.
        if unsafe { libc::ioctl(fd, UI_DEV_DESTROY as _) } == 0 {
            n += 1;
        }
    }
    n
}

fn gone(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while present(name) {
        assert!(Instant::now() < deadline, "{name:?} still present");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `/dev/uinput` made again (after a test removed it), from sysfs's numbers.
fn ensure_node() {
    assert!(restore_node(), "could not make /dev/uinput again");
}

fn restore_node() -> bool {
    if Path::new("/dev/uinput").exists() {
        return true;
    }
    let Ok(dev) = std::fs::read_to_string("/sys/class/misc/uinput/dev") else {
        return false;
    };
    let Some((major, minor)) = dev.trim().split_once(':') else {
        return false;
    };
    std::process::Command::new("/bin/busybox")
        .args(["mknod", "/dev/uinput", "c", major, minor])
        .status()
        .is_ok_and(|s| s.success())
}

/// Puts `/dev/uinput` back however the test ends, for the tests after it.
struct NodeBack;

impl Drop for NodeBack {
    fn drop(&mut self) {
        restore_node();
    }
}

#[test]
#[ignore = "needs /dev/uinput: vm/run-uinput-tests.sh runs it in qemu"]
fn devices_destroyed_under_the_backend_hand_input_to_the_fallback() {
    ensure_node();
    let sink = Path::new("/tmp/fallback.jsonl");
    let open_sink: Opener = Box::new(move || {
        Ok(Box::new(oriel_input::record::Recorder::create(sink)?) as Box<dyn Backend>)
    });
    let mut b = Failover::new(
        Box::new(Uinput::open().expect("uinput")),
        Some(("the recording sink".into(), open_sink)),
        None,
    );
    let health = b.health();
    let (_, mut kbd) = find(uinput::KEYBOARD_NAME);
    b.key(30, true).unwrap();
    b.key(30, false).unwrap();
    assert_eq!(
        read_exactly(&mut kbd, 2),
        vec![(EV_KEY, 30, 1), (EV_KEY, 30, 0)]
    );

    assert_eq!(destroy_our_devices(), 3, "keyboard, mouse and pointer");
    gone(uinput::KEYBOARD_NAME);
    // The next key fails on the dead keyboard and lands in the fallback.
    b.key(31, true).unwrap();
    b.pointer_rel(1, 2).unwrap();
    let got = std::fs::read_to_string(sink).unwrap();
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        vec![
            r#"{"device":"keyboard","down":true,"key":31}"#,
            r#"{"device":"mouse","dx":1,"dy":2}"#
        ]
    );
    assert_eq!(health.backend(), "record");
    assert_eq!(
        health.failures.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let problem = health.problem().unwrap_or_default();
    println!("vm: the destroyed keyboard's write: {problem}");
    assert!(
        problem.starts_with("uinput stopped taking input (uinput write: ")
            && problem.contains("go through the recording sink"),
        "{problem}"
    );
}

#[test]
#[ignore = "needs /dev/uinput: vm/run-uinput-tests.sh runs it in qemu"]
fn dev_uinput_removed_mid_session_then_the_devices_then_back() {
    ensure_node();
    let _back = NodeBack;
    let reopen: Opener = Box::new(|| Ok(Box::new(Uinput::open()?) as Box<dyn Backend>));
    let mut b = Failover::new(
        Box::new(Uinput::open().expect("uinput")),
        None,
        Some(reopen),
    )
    .retry_every(Duration::from_millis(50));
    let health = b.health();
    let (_, mut kbd) = find(uinput::KEYBOARD_NAME);

    // The node goes: open devices go on, new gamepads cannot be made.
    std::fs::remove_file("/dev/uinput").unwrap();
    b.key(30, true).unwrap();
    assert_eq!(read_exactly(&mut kbd, 1), vec![(EV_KEY, 30, 1)]);
    assert!(b.gamepad_add(2).is_err());
    assert!(!health.gamepads());
    let problem = health.problem().unwrap_or_default();
    assert!(
        problem.starts_with("new gamepads cannot be created"),
        "{problem}"
    );
    assert_eq!(health.backend(), "uinput");
    // The module cannot be unloaded while its devices are open.
    let rmmod = std::process::Command::new("/bin/busybox")
        .args(["rmmod", "uinput"])
        .status()
        .expect("busybox rmmod");
    assert!(!rmmod.success(), "rmmod uinput succeeded with devices open");
    b.key(30, false).unwrap();
    assert_eq!(read_exactly(&mut kbd, 1), vec![(EV_KEY, 30, 0)]);

    // Then the devices go too, with nothing to take over: input is off,
    // said in the status; events fail (the service counts them), no panic.
    destroy_our_devices();
    gone(uinput::KEYBOARD_NAME);
    drop(kbd);
    assert!(b.key(30, true).is_err());
    assert!(b.key(30, false).is_err());
    assert_eq!((health.backend(), health.gamepads()), ("none", false));
    let problem = health.problem().unwrap_or_default();
    assert!(problem.contains("input is off"), "{problem}");
    assert_eq!(
        health.failures.load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    // The node is back (udev would make it): new devices, input is back.
    ensure_node();
    std::thread::sleep(Duration::from_millis(60));
    let _ = b.key(30, true); // this one opens the devices again
    let (_, mut kbd) = find(uinput::KEYBOARD_NAME);
    b.key(31, true).unwrap();
    assert_eq!(read_exactly(&mut kbd, 1), vec![(EV_KEY, 31, 1)]);
    assert_eq!((health.backend(), health.problem()), ("uinput", None));
    b.gamepad_add(2).unwrap();
    assert!(health.gamepads());
}
