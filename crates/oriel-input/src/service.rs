//! The input service: a thread that owns the injection backend. It gets
//! raw data-channel bytes per peer, decodes and validates them, checks them
//! against the peer's role (enforcement happens here, where input is
//! injected), injects, and counts every drop by reason. When a peer leaves,
//! everything it held down is released and its gamepad removed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::flood::{FloodHook, Gates};
use crate::gamepad::PadState;
use crate::keymap;
use crate::protocol::{decode, InputMessage, MouseButton};
use crate::roles::{allowed, Role};
use crate::PeerId;

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct InputStats {
    pub injected: AtomicU64,
    /// Dropped messages by reason (`viewer`, `malformed_length`, ...).
    pub dropped: Mutex<BTreeMap<String, u64>>,
    /// Microseconds from a message's arrival off the data channel to the
    /// backend call returning, for the last [`LATENCY_SAMPLES`] injections.
    latency_us: Mutex<std::collections::VecDeque<u32>>,
}

/// How many recent injection latencies are kept for quantiles.
pub const LATENCY_SAMPLES: usize = 4096;

impl InputStats {
    pub(crate) fn count_drop(&self, reason: &str) {
        if let Ok(mut d) = self.dropped.lock() {
            *d.entry(reason.to_string()).or_default() += 1;
        }
    }

    pub fn dropped_snapshot(&self) -> BTreeMap<String, u64> {
        self.dropped.lock().map(|d| d.clone()).unwrap_or_default()
    }

    fn record_latency(&self, d: Duration) {
        if let Ok(mut l) = self.latency_us.lock() {
            if l.len() == LATENCY_SAMPLES {
                l.pop_front();
            }
            l.push_back(d.as_micros().min(u32::MAX as u128) as u32);
        }
    }

    /// Quantiles of the recent injection latencies (the last
    /// `LATENCY_SAMPLES` events), in microseconds.
    pub fn latency_summary(&self) -> Option<LatencySummary> {
        let mut v: Vec<u32> = self.latency_us.lock().ok()?.iter().copied().collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        // Nearest rank: the smallest sample with at least p of them at or below it.
        let q = |p: f64| v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1];
        Some(LatencySummary {
            p50: q(0.5),
            p95: q(0.95),
            p99: q(0.99),
            max: q(1.0),
            samples: v.len(),
        })
    }
}

/// Recent data-channel-arrival-to-injection-done latencies, microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencySummary {
    pub p50: u32,
    pub p95: u32,
    pub p99: u32,
    pub max: u32,
    pub samples: usize,
}

enum Command {
    Join(PeerId, Role),
    Leave(PeerId),
    Data(PeerId, Vec<u8>, Instant),
    Shutdown(mpsc::Sender<()>),
}

#[derive(Clone)]
pub struct InputHandle {
    tx: mpsc::Sender<Command>,
    /// Per-peer rate limits and the queue bound, checked before sending.
    gates: Arc<Gates>,
    pub stats: Arc<InputStats>,
    pub backend: &'static str,
    pub gamepads: bool,
}

impl InputHandle {
    pub fn join(&self, peer: PeerId, role: Role) {
        self.gates.join(peer);
        let _ = self.tx.send(Command::Join(peer, role));
    }
    pub fn leave(&self, peer: PeerId) {
        self.gates.leave(peer);
        let _ = self.tx.send(Command::Leave(peer));
    }
    /// Who is told when a peer floods its data channels (see
    /// [`crate::flood`]); its input is dropped from then on.
    pub fn on_flood(&self, hook: FloodHook) {
        self.gates.on_flood(hook);
    }
    /// Releases everything every peer holds, removes their gamepads, then
    /// drops the backend (uinput devices disappear); returns when done or
    /// after `timeout`. Later input is ignored.
    pub fn shutdown(&self, timeout: std::time::Duration) {
        let (tx, rx) = mpsc::channel();
        if self.tx.send(Command::Shutdown(tx)).is_ok() {
            let _ = rx.recv_timeout(timeout);
        }
    }
    /// Bytes from one of the peer's data channels (any thread). Over the
    /// peer's rate, too long, or with the queue full, they are dropped and
    /// counted here, before anything is queued.
    pub fn data(&self, peer: PeerId, bytes: &[u8]) {
        if let Err(reason) = self.gates.admit(peer, bytes.len()) {
            return self.stats.count_drop(reason);
        }
        let _ = self
            .tx
            .send(Command::Data(peer, bytes.to_vec(), Instant::now()));
    }
}

/// What one peer holds down, to release on leave.
#[derive(Default)]
struct Held {
    keys: HashSet<u16>,
    buttons: HashSet<MouseButtonKey>,
    pad: Option<PadState>,
}

type MouseButtonKey = u8;

fn button_key(b: MouseButton) -> MouseButtonKey {
    b as u8
}

fn button_from_key(k: MouseButtonKey) -> MouseButton {
    match k {
        0 => MouseButton::Left,
        1 => MouseButton::Middle,
        2 => MouseButton::Right,
        3 => MouseButton::Back,
        _ => MouseButton::Forward,
    }
}

struct Peer {
    role: Role,
    held: Held,
}

pub fn spawn(backend: Box<dyn Backend>) -> std::io::Result<InputHandle> {
    let (tx, rx) = mpsc::channel();
    let stats = Arc::new(InputStats::default());
    let gates = Arc::new(Gates::default());
    let handle = InputHandle {
        tx,
        gates: gates.clone(),
        stats: stats.clone(),
        backend: backend.name(),
        gamepads: backend.gamepads(),
    };
    std::thread::Builder::new()
        .name("oriel-input".into())
        .spawn(move || {
            let mut service = Service {
                backend,
                stats,
                peers: HashMap::new(),
            };
            while let Ok(cmd) = rx.recv() {
                if let Command::Data(..) = cmd {
                    gates.dequeued();
                }
                if let Command::Shutdown(done) = cmd {
                    let peers: Vec<PeerId> = service.peers.keys().copied().collect();
                    for peer in peers {
                        service.release(peer);
                    }
                    drop(service);
                    let _ = done.send(());
                    return;
                }
                service.handle(cmd);
            }
        })?;
    Ok(handle)
}

struct Service {
    backend: Box<dyn Backend>,
    stats: Arc<InputStats>,
    peers: HashMap<PeerId, Peer>,
}

impl Service {
    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Join(peer, role) => {
                self.release(peer);
                self.peers.insert(
                    peer,
                    Peer {
                        role,
                        held: Held::default(),
                    },
                );
            }
            Command::Leave(peer) => {
                self.release(peer);
                self.peers.remove(&peer);
            }
            Command::Data(peer, bytes, arrived) => self.data(peer, &bytes, arrived),
            Command::Shutdown(_) => {} // handled by the thread's loop
        }
    }

    fn data(&mut self, peer: PeerId, bytes: &[u8], arrived: Instant) {
        let Some(role) = self.peers.get(&peer).map(|p| p.role) else {
            return self.stats.count_drop("unknown_peer");
        };
        let msg = match decode(bytes) {
            Ok(m) => m,
            Err(e) => return self.stats.count_drop(&format!("malformed_{}", e.as_str())),
        };
        if let Err(denied) = allowed(role, &msg) {
            return self.stats.count_drop(denied.as_str());
        }
        match self.inject(peer, role, msg) {
            Ok(()) => {
                self.stats.injected.fetch_add(1, Ordering::Relaxed);
                self.stats.record_latency(arrived.elapsed());
            }
            Err(reason) => self.stats.count_drop(reason),
        }
    }

    fn inject(&mut self, peer: PeerId, role: Role, msg: InputMessage) -> Result<(), &'static str> {
        let b = &mut self.backend;
        let Some(p) = self.peers.get_mut(&peer) else {
            return Err("unknown_peer");
        };
        let held = &mut p.held;
        let failed = |e: anyhow::Error| {
            tracing::debug!(peer, "input not injected: {e:#}");
            "backend_error"
        };
        match msg {
            InputMessage::KeyDown(code) | InputMessage::KeyUp(code)
                if keymap::evdev_key(&code).is_none() =>
            {
                Err("unknown_key")
            }
            InputMessage::KeyDown(code) => {
                let key = keymap::evdev_key(&code).ok_or("unknown_key")?;
                held.keys.insert(key);
                b.key(key, true).map_err(failed)
            }
            InputMessage::KeyUp(code) => {
                let key = keymap::evdev_key(&code).ok_or("unknown_key")?;
                held.keys.remove(&key);
                b.key(key, false).map_err(failed)
            }
            InputMessage::Text(t) => b.text(&t).map_err(|e| {
                tracing::debug!(peer, "text: {e:#}");
                "text_unmappable"
            }),
            InputMessage::PointerAbs { x, y } => b.pointer_abs(x, y).map_err(failed),
            InputMessage::PointerRel { dx, dy } => b.pointer_rel(dx, dy).map_err(failed),
            InputMessage::ButtonDown(btn) => {
                held.buttons.insert(button_key(btn));
                b.button(btn, true).map_err(failed)
            }
            InputMessage::ButtonUp(btn) => {
                held.buttons.remove(&button_key(btn));
                b.button(btn, false).map_err(failed)
            }
            InputMessage::Wheel { dx, dy } => b.wheel(dx, dy).map_err(failed),
            InputMessage::GamepadConnect => {
                let slot = role.gamepad_slot().ok_or("viewer")?;
                if held.pad.is_some() {
                    return Ok(());
                }
                b.gamepad_add(slot).map_err(|e| {
                    tracing::info!(peer, slot, "gamepad not created: {e:#}");
                    "gamepad_unavailable"
                })?;
                held.pad = Some(PadState::default());
                Ok(())
            }
            InputMessage::GamepadDisconnect => {
                let slot = role.gamepad_slot().ok_or("viewer")?;
                if held.pad.take().is_some() {
                    b.gamepad_remove(slot);
                }
                Ok(())
            }
            InputMessage::GamepadButton { index, value } => {
                let slot = role.gamepad_slot().ok_or("viewer")?;
                let pad = held.pad.as_mut().ok_or("gamepad_not_connected")?;
                let ev = pad.button(index, value).ok_or("bad_field")?;
                b.gamepad(slot, ev).map_err(failed)
            }
            InputMessage::GamepadAxis { index, value } => {
                let slot = role.gamepad_slot().ok_or("viewer")?;
                let pad = held.pad.as_ref().ok_or("gamepad_not_connected")?;
                let ev = pad.axis(index, value).ok_or("bad_field")?;
                b.gamepad(slot, ev).map_err(failed)
            }
            InputMessage::ReleaseAll => {
                self.release_held(peer, false);
                Ok(())
            }
        }
    }

    /// Releases everything the peer holds and removes its gamepad.
    fn release(&mut self, peer: PeerId) {
        self.release_held(peer, true);
    }

    fn release_held(&mut self, peer: PeerId, remove_pad: bool) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let held = std::mem::take(&mut p.held);
        let slot = p.role.gamepad_slot();
        for key in held.keys {
            let _ = self.backend.key(key, false);
        }
        for b in held.buttons {
            let _ = self.backend.button(button_from_key(b), false);
        }
        if let (Some(pad), Some(slot)) = (held.pad, slot) {
            for ev in PadState::rest() {
                let _ = self.backend.gamepad(slot, ev);
            }
            if remove_pad {
                self.backend.gamepad_remove(slot);
            } else if let Some(p) = self.peers.get_mut(&peer) {
                // Release-all keeps the pad, at rest.
                p.held.pad = Some(pad);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gamepad::PadEvent;
    use crate::protocol::encode;

    #[test]
    fn latency_summary_is_nearest_rank_over_the_recent_window() {
        let stats = InputStats::default();
        assert_eq!(stats.latency_summary(), None);
        // Older samples fall out of the window: these 10 000 µs ones must not count.
        for _ in 0..100 {
            stats.record_latency(Duration::from_micros(10_000));
        }
        // Then a full window spread evenly over 1..=100 µs.
        for i in 0..LATENCY_SAMPLES {
            stats.record_latency(Duration::from_micros(
                1 + (i * 100 / LATENCY_SAMPLES) as u64,
            ));
        }
        let l = stats.latency_summary().expect("samples");
        assert_eq!(l.samples, LATENCY_SAMPLES);
        assert_eq!((l.p50, l.p95, l.p99, l.max), (50, 95, 99, 100));
    }

    /// A backend that remembers what it was asked to do.
    struct Log(Arc<Mutex<Vec<String>>>, bool);

    impl Backend for Log {
        fn name(&self) -> &'static str {
            "log"
        }
        fn gamepads(&self) -> bool {
            self.1
        }
        fn key(&mut self, key: u16, down: bool) -> anyhow::Result<()> {
            self.push(format!("key {key} {down}"))
        }
        fn text(&mut self, text: &str) -> anyhow::Result<()> {
            self.push(format!("text {text}"))
        }
        fn pointer_abs(&mut self, x: u16, y: u16) -> anyhow::Result<()> {
            self.push(format!("abs {x} {y}"))
        }
        fn pointer_rel(&mut self, dx: i16, dy: i16) -> anyhow::Result<()> {
            self.push(format!("rel {dx} {dy}"))
        }
        fn button(&mut self, b: MouseButton, down: bool) -> anyhow::Result<()> {
            self.push(format!("button {b:?} {down}"))
        }
        fn wheel(&mut self, dx: i16, dy: i16) -> anyhow::Result<()> {
            self.push(format!("wheel {dx} {dy}"))
        }
        fn gamepad_add(&mut self, slot: u8) -> anyhow::Result<()> {
            if !self.1 {
                anyhow::bail!("no uinput");
            }
            self.push(format!("pad{slot} add"))
        }
        fn gamepad_remove(&mut self, slot: u8) {
            let _ = self.push(format!("pad{slot} remove"));
        }
        fn gamepad(&mut self, slot: u8, e: PadEvent) -> anyhow::Result<()> {
            self.push(format!("pad{slot} {e:?}"))
        }
    }

    impl Log {
        fn push(&mut self, s: String) -> anyhow::Result<()> {
            self.0.lock().unwrap().push(s);
            Ok(())
        }
    }

    fn setup(gamepads: bool) -> (InputHandle, Arc<Mutex<Vec<String>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let h = spawn(Box::new(Log(log.clone(), gamepads))).unwrap();
        (h, log)
    }

    /// Waits until the service has handled everything sent so far.
    fn settle(h: &InputHandle, expect_total: u64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let dropped: u64 = h.stats.dropped_snapshot().values().sum();
            if h.stats.injected.load(Ordering::Relaxed) + dropped >= expect_total {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("input service did not settle");
    }

    fn send(h: &InputHandle, peer: PeerId, m: InputMessage) {
        h.data(peer, &encode(&m));
    }

    #[test]
    fn viewer_input_never_reaches_the_backend() {
        let (h, log) = setup(true);
        h.join(1, Role::Viewer);
        for m in [
            InputMessage::KeyDown("KeyA".into()),
            InputMessage::PointerAbs { x: 1, y: 2 },
            InputMessage::ButtonDown(MouseButton::Left),
            InputMessage::GamepadConnect,
            InputMessage::Text("hi".into()),
        ] {
            send(&h, 1, m);
        }
        settle(&h, 5);
        assert!(log.lock().unwrap().is_empty(), "{:?}", log.lock().unwrap());
        assert_eq!(h.stats.dropped_snapshot().get("viewer"), Some(&5));
    }

    #[test]
    fn players_drive_only_their_own_pad() {
        let (h, log) = setup(true);
        h.join(2, Role::Player { slot: 2 });
        h.join(3, Role::Player { slot: 3 });
        send(&h, 2, InputMessage::GamepadConnect);
        send(&h, 3, InputMessage::GamepadConnect);
        send(
            &h,
            2,
            InputMessage::GamepadButton {
                index: 0,
                value: 65535,
            },
        );
        send(
            &h,
            3,
            InputMessage::GamepadAxis {
                index: 0,
                value: -32768,
            },
        );
        send(&h, 2, InputMessage::KeyDown("KeyA".into()));
        send(&h, 3, InputMessage::PointerRel { dx: 5, dy: 5 });
        settle(&h, 6);
        let log = log.lock().unwrap().clone();
        assert_eq!(
            log,
            vec![
                "pad2 add".to_string(),
                "pad3 add".into(),
                "pad2 Key { code: 304, pressed: true }".into(),
                "pad3 Abs { code: 0, value: -32768 }".into(),
            ]
        );
        assert_eq!(
            h.stats.dropped_snapshot().get("player_not_gamepad"),
            Some(&2)
        );
    }

    #[test]
    fn leaving_releases_everything_held() {
        let (h, log) = setup(true);
        h.join(1, Role::Controller);
        send(&h, 1, InputMessage::KeyDown("ShiftLeft".into()));
        send(&h, 1, InputMessage::ButtonDown(MouseButton::Right));
        send(&h, 1, InputMessage::GamepadConnect);
        send(
            &h,
            1,
            InputMessage::GamepadButton {
                index: 1,
                value: 65535,
            },
        );
        settle(&h, 4);
        h.leave(1);
        // A message after leaving is dropped, which also proves the leave
        // was handled (the service is sequential).
        send(&h, 1, InputMessage::KeyDown("KeyA".into()));
        settle(&h, 5);
        let log = log.lock().unwrap().clone();
        assert!(log.contains(&"key 42 false".to_string()), "{log:?}");
        assert!(log.contains(&"button Right false".to_string()), "{log:?}");
        assert!(
            log.contains(&"pad1 Key { code: 305, pressed: false }".to_string()),
            "{log:?}"
        );
        assert_eq!(log.last(), Some(&"pad1 remove".to_string()));
        assert_eq!(h.stats.dropped_snapshot().get("unknown_peer"), Some(&1));
    }

    #[test]
    fn malformed_and_unsupported_are_counted() {
        let (h, log) = setup(false);
        h.join(1, Role::Controller);
        h.data(1, &[]);
        h.data(1, &[9, 9]);
        h.data(1, &[1, 0x7f]);
        send(&h, 1, InputMessage::KeyDown("NotAKey".into()));
        send(&h, 1, InputMessage::GamepadConnect);
        settle(&h, 5);
        assert!(log.lock().unwrap().is_empty());
        let d = h.stats.dropped_snapshot();
        assert_eq!(d.get("malformed_empty"), Some(&1));
        assert_eq!(d.get("malformed_version"), Some(&1));
        assert_eq!(d.get("malformed_unknown_type"), Some(&1));
        assert_eq!(d.get("unknown_key"), Some(&1));
        assert_eq!(d.get("gamepad_unavailable"), Some(&1));
    }
}
