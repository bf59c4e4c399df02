//! Losing the input devices mid-session. uinput devices can stop taking
//! events (their fd answers ENODEV/EINVAL once the device is destroyed
//! under us, e.g. the module forced out), and `/dev/uinput` itself can
//! vanish (new gamepads then cannot be created, the existing devices go
//! on). [`Failover`] wraps the backend the agent picked: when its devices
//! are gone ([`DeviceGone`]) it says so once, counts it, and moves to the
//! fallback (XTest on the captured X display) with the event that failed;
//! without a fallback, input is off and the status says so, and the
//! primary is tried again now and then so input comes back with the
//! devices. [`Health`] is what the rest of the agent reads: which backend
//! injects now, whether gamepads can be created, and the problem in words.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

use crate::backend::Backend;
use crate::gamepad::PadEvent;
use crate::protocol::MouseButton;

/// The error a backend returns when its devices no longer take input at
/// all (as opposed to one event it could not map). Failover reacts to it.
#[derive(Debug)]
pub struct DeviceGone(pub String);

impl std::fmt::Display for DeviceGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeviceGone {}

/// Whether a failed write means the device is gone: anything but an
/// interrupted or would-block write.
pub fn is_gone(e: &std::io::Error) -> bool {
    !matches!(
        e.kind(),
        std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
    )
}

/// A write error, as [`DeviceGone`] when it means the device is gone.
pub fn write_error(what: &str, e: std::io::Error) -> anyhow::Error {
    if is_gone(&e) {
        anyhow!(DeviceGone(format!("{what}: {e}")))
    } else {
        anyhow!("{what}: {e}")
    }
}

/// Opens a backend (the fallback, or the primary again).
pub type Opener = Box<dyn FnMut() -> Result<Box<dyn Backend>> + Send>;

/// How often a backend that is off is tried again, at most (on input).
pub const RETRY_EVERY: Duration = Duration::from_secs(2);

/// What injects input now, for `/metrics`, new clients and the controller.
#[derive(Debug)]
pub struct Health {
    now: Mutex<Now>,
    /// Times the backend's devices were lost.
    pub failures: AtomicU64,
}

#[derive(Debug, Clone)]
struct Now {
    backend: &'static str,
    gamepads: bool,
    problem: Option<String>,
}

impl Health {
    pub fn new(backend: &'static str, gamepads: bool) -> Self {
        Health {
            now: Mutex::new(Now {
                backend,
                gamepads,
                problem: None,
            }),
            failures: AtomicU64::new(0),
        }
    }

    fn now(&self) -> Now {
        self.now.lock().map(|n| n.clone()).unwrap_or(Now {
            backend: "none",
            gamepads: false,
            problem: Some("input status unavailable".into()),
        })
    }

    /// The backend injecting now (`uinput`, `xtest`, ...), `none` when off.
    pub fn backend(&self) -> &'static str {
        self.now().backend
    }

    /// Whether new gamepads can be created now.
    pub fn gamepads(&self) -> bool {
        self.now().gamepads
    }

    /// What went wrong, in words, while something is degraded.
    pub fn problem(&self) -> Option<String> {
        self.now().problem
    }

    fn set(&self, backend: &'static str, gamepads: bool, problem: Option<String>) {
        if let Ok(mut n) = self.now.lock() {
            *n = Now {
                backend,
                gamepads,
                problem,
            };
        }
    }

    fn set_gamepads(&self, gamepads: bool, problem: Option<String>) {
        if let Ok(mut n) = self.now.lock() {
            n.gamepads = gamepads;
            n.problem = problem;
        }
    }
}

pub struct Failover {
    current: Option<Box<dyn Backend>>,
    /// Opens the primary again while input is off.
    reopen: Option<Opener>,
    fallback: Option<Opener>,
    /// Said when the fallback takes over: "XTest on :0".
    fallback_name: String,
    health: Arc<Health>,
    /// The last time input was off and an event came: retries are spaced.
    last_retry: Option<Instant>,
    retry_every: Duration,
}

impl Failover {
    /// Wraps `primary`. `fallback` opens what takes over when its devices
    /// are gone (named `fallback_name` in the log); `reopen` opens the
    /// primary again while input is off.
    pub fn new(
        primary: Box<dyn Backend>,
        fallback: Option<(String, Opener)>,
        reopen: Option<Opener>,
    ) -> Self {
        let health = Arc::new(Health::new(primary.name(), primary.gamepads()));
        let (fallback_name, fallback) = match fallback {
            Some((name, open)) => (name, Some(open)),
            None => (String::new(), None),
        };
        Failover {
            current: Some(primary),
            reopen,
            fallback,
            fallback_name,
            health,
            last_retry: None,
            retry_every: RETRY_EVERY,
        }
    }

    /// Spaces the primary's retries by `every` instead of [`RETRY_EVERY`].
    pub fn retry_every(mut self, every: Duration) -> Self {
        self.retry_every = every;
        self
    }

    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }

    /// Runs `f` on the current backend; when its devices are gone, moves
    /// on (once) and runs `f` on what takes over.
    fn with<T>(&mut self, mut f: impl FnMut(&mut dyn Backend) -> Result<T>) -> Result<T> {
        if self.current.is_none() {
            self.retry();
        }
        let Some(b) = self.current.as_mut() else {
            return Err(anyhow!(
                "input is off: {}",
                self.health.problem().unwrap_or_default()
            ));
        };
        match f(b.as_mut()) {
            Err(e) if e.downcast_ref::<DeviceGone>().is_some() => {
                self.lost(&e);
                match self.current.as_mut() {
                    Some(b) => f(b.as_mut()),
                    None => Err(e),
                }
            }
            r => r,
        }
    }

    /// The current backend's devices are gone: the fallback takes over, or
    /// input is off. Logged once per loss.
    fn lost(&mut self, e: &anyhow::Error) {
        let Some(old) = self.current.take() else {
            return;
        };
        let was = old.name();
        // Its devices are gone already; dropping it removes what is left.
        drop(old);
        self.health.failures.fetch_add(1, Ordering::Relaxed);
        let opened = self.fallback.take().map(|mut open| open());
        match opened {
            Some(Ok(b)) => {
                let problem = format!(
                    "{was} stopped taking input ({e:#}); keyboard and mouse go through {}{}",
                    self.fallback_name,
                    if b.gamepads() {
                        ""
                    } else {
                        ", gamepads are unavailable"
                    }
                );
                tracing::warn!(from = was, to = b.name(), "input: {problem}");
                self.health.set(b.name(), b.gamepads(), Some(problem));
                self.current = Some(b);
            }
            other => {
                let why = match other {
                    Some(Err(f)) => format!("; {} failed too ({f:#})", self.fallback_name),
                    _ => String::new(),
                };
                let problem = format!(
                    "{was} stopped taking input ({e:#}){why}: input is off, clients can only watch \
                     until {was} works again"
                );
                tracing::error!(backend = was, "input: {problem}");
                self.health.set("none", false, Some(problem));
                self.last_retry = Some(Instant::now());
            }
        }
    }

    /// Input is off: open the primary again, at most every [`RETRY_EVERY`].
    fn retry(&mut self) {
        let now = Instant::now();
        if self
            .last_retry
            .is_some_and(|t| now.duration_since(t) < self.retry_every)
        {
            return;
        }
        self.last_retry = Some(now);
        let Some(open) = self.reopen.as_mut() else {
            return;
        };
        if let Ok(b) = open() {
            tracing::info!(backend = b.name(), "input: {} works again", b.name());
            self.health.set(b.name(), b.gamepads(), None);
            self.current = Some(b);
        }
    }
}

impl Backend for Failover {
    fn name(&self) -> &'static str {
        self.current.as_ref().map_or("none", |b| b.name())
    }
    fn gamepads(&self) -> bool {
        self.current.as_ref().is_some_and(|b| b.gamepads())
    }
    fn key(&mut self, key: u16, down: bool) -> Result<()> {
        self.with(|b| b.key(key, down))
    }
    fn text(&mut self, text: &str) -> Result<()> {
        self.with(|b| b.text(text))
    }
    fn pointer_abs(&mut self, x: u16, y: u16) -> Result<()> {
        self.with(|b| b.pointer_abs(x, y))
    }
    fn pointer_rel(&mut self, dx: i16, dy: i16) -> Result<()> {
        self.with(|b| b.pointer_rel(dx, dy))
    }
    fn button(&mut self, button: MouseButton, down: bool) -> Result<()> {
        self.with(|b| b.button(button, down))
    }
    fn wheel(&mut self, dx: i16, dy: i16) -> Result<()> {
        self.with(|b| b.wheel(dx, dy))
    }
    /// A backend that has gamepads but cannot make one now (`/dev/uinput`
    /// gone while the other devices live on) is told once, and again when
    /// it can.
    fn gamepad_add(&mut self, slot: u8) -> Result<()> {
        let (before, could) = (self.name(), self.gamepads());
        let r = self.with(|b| b.gamepad_add(slot));
        if !could || self.name() != before {
            return r;
        }
        match &r {
            Err(e) if self.health.gamepads() => {
                let p = format!("new gamepads cannot be created ({e:#}); keyboard and mouse go on");
                tracing::warn!(backend = before, "input: {p}");
                self.health.set_gamepads(false, Some(p));
            }
            Ok(()) if !self.health.gamepads() => {
                tracing::info!(backend = before, "input: gamepads can be created again");
                self.health.set_gamepads(true, None);
            }
            _ => {}
        }
        r
    }
    fn gamepad_remove(&mut self, slot: u8) {
        if let Some(b) = self.current.as_mut() {
            b.gamepad_remove(slot);
        }
    }
    fn gamepad(&mut self, slot: u8, event: PadEvent) -> Result<()> {
        self.with(|b| b.gamepad(slot, event))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::protocol::{encode, InputMessage};
    use crate::record::Recorder;
    use crate::roles::Role;
    use crate::service::{spawn, InputHandle};

    type Lines = Arc<Mutex<Vec<String>>>;

    /// A writer whose writes fail with `errno` once `ok` of them went
    /// through (ENODEV: a device the kernel took away).
    struct FailAfter {
        ok: usize,
        errno: i32,
        lines: Arc<Mutex<Vec<String>>>,
    }

    impl Write for FailAfter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.ok == 0 {
                return Err(std::io::Error::from_raw_os_error(self.errno));
            }
            self.ok -= 1;
            let line = String::from_utf8_lossy(buf).trim().to_string();
            self.lines.lock().unwrap().push(line);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A recording sink over a writer that fails after `ok` lines.
    fn failing(ok: usize, lines: &Arc<Mutex<Vec<String>>>) -> Box<dyn Backend> {
        Box::new(Recorder::new(FailAfter {
            ok,
            errno: ENODEV,
            lines: lines.clone(),
        }))
    }

    /// Linux's ENODEV: what a uinput fd says once its device is gone.
    const ENODEV: i32 = 19;

    /// A fallback that records into memory and can be made to fail to open.
    fn memory(lines: &Arc<Mutex<Vec<String>>>) -> Opener {
        let lines = lines.clone();
        Box::new(move || Ok(failing(usize::MAX, &lines)))
    }

    fn keys(h: &InputHandle, peer: u64, n: usize) {
        for i in 0..n {
            let m = if i % 2 == 0 {
                InputMessage::KeyDown("KeyA".into())
            } else {
                InputMessage::KeyUp("KeyA".into())
            };
            h.data(peer, &encode(&m));
        }
    }

    fn settle(h: &InputHandle, total: u64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let dropped: u64 = h.stats.dropped_snapshot().values().sum();
            if h.stats.injected.load(Ordering::Relaxed) + dropped >= total {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("the input service did not settle");
    }

    #[test]
    fn the_fallback_takes_over_with_the_event_that_failed() {
        let (first, second): (Lines, Lines) = (Arc::default(), Arc::default());
        let f = Failover::new(
            failing(3, &first),
            Some(("the fallback".into(), memory(&second))),
            None,
        );
        let health = f.health();
        assert_eq!((health.backend(), health.gamepads()), ("record", true));
        let h = spawn(Box::new(f)).unwrap();
        h.join(1, Role::Controller);
        keys(&h, 1, 10);
        settle(&h, 10);
        // Nothing lost: 3 events before the failure, 7 after (the failed
        // one retried on the fallback).
        assert_eq!(h.stats.injected.load(Ordering::Relaxed), 10);
        assert_eq!(first.lock().unwrap().len(), 3);
        let after = second.lock().unwrap().clone();
        assert_eq!(after.len(), 7, "{after:?}");
        assert!(after[0].contains(r#""down":false"#), "{after:?}");
        assert_eq!(health.failures.load(Ordering::Relaxed), 1);
        assert_eq!(health.backend(), "record");
        let problem = health.problem().unwrap_or_default();
        assert!(
            problem.starts_with(
                "record stopped taking input (the recording input sink: No such device"
            ) && problem.contains("go through the fallback"),
            "{problem}"
        );
        h.shutdown(Duration::from_secs(2));
    }

    #[test]
    fn without_a_fallback_input_is_off_and_comes_back_with_the_device() {
        let (first, again): (Lines, Lines) = (Arc::default(), Arc::default());
        let back = Arc::new(AtomicBool::new(false));
        let (b, l) = (back.clone(), again.clone());
        let reopen: Opener = Box::new(move || {
            if b.load(Ordering::Relaxed) {
                Ok(failing(usize::MAX, &l))
            } else {
                Err(anyhow!(
                    "/dev/uinput is not writable (No such file or directory)"
                ))
            }
        });
        let f = Failover::new(failing(2, &first), None, Some(reopen))
            .retry_every(Duration::from_millis(50));
        let health = f.health();
        let h = spawn(Box::new(f)).unwrap();
        h.join(1, Role::Controller);
        keys(&h, 1, 100);
        settle(&h, 100);
        // Two in, the rest dropped and counted; the loss is counted once.
        assert_eq!(h.stats.injected.load(Ordering::Relaxed), 2);
        assert_eq!(h.stats.dropped_snapshot().get("backend_error"), Some(&98));
        assert_eq!(health.failures.load(Ordering::Relaxed), 1);
        assert_eq!((health.backend(), health.gamepads()), ("none", false));
        let problem = health.problem().unwrap_or_default();
        assert!(problem.contains("input is off"), "{problem}");
        // The device is back: the next event after the retry interval
        // reaches it.
        back.store(true, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(60));
        keys(&h, 1, 2);
        settle(&h, 102);
        assert_eq!(h.stats.injected.load(Ordering::Relaxed), 4);
        assert_eq!(again.lock().unwrap().len(), 2);
        assert_eq!((health.backend(), health.problem()), ("record", None));
        h.shutdown(Duration::from_secs(2));
    }

    /// /dev/uinput gone while the devices live on: gamepads cannot be made.
    struct NoNewPads(Arc<AtomicBool>);

    impl Backend for NoNewPads {
        fn name(&self) -> &'static str {
            "uinput"
        }
        fn gamepads(&self) -> bool {
            true
        }
        fn key(&mut self, _: u16, _: bool) -> Result<()> {
            Ok(())
        }
        fn text(&mut self, _: &str) -> Result<()> {
            Ok(())
        }
        fn pointer_abs(&mut self, _: u16, _: u16) -> Result<()> {
            Ok(())
        }
        fn pointer_rel(&mut self, _: i16, _: i16) -> Result<()> {
            Ok(())
        }
        fn button(&mut self, _: MouseButton, _: bool) -> Result<()> {
            Ok(())
        }
        fn wheel(&mut self, _: i16, _: i16) -> Result<()> {
            Ok(())
        }
        fn gamepad_add(&mut self, _: u8) -> Result<()> {
            if self.0.load(Ordering::Relaxed) {
                Ok(())
            } else {
                Err(anyhow!("No such file or directory (os error 2)"))
            }
        }
        fn gamepad_remove(&mut self, _: u8) {}
        fn gamepad(&mut self, _: u8, _: PadEvent) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn gamepads_that_cannot_be_made_are_said_once_and_come_back() {
        let node = Arc::new(AtomicBool::new(false));
        let mut f = Failover::new(Box::new(NoNewPads(node.clone())), None, None);
        let health = f.health();
        assert!(f.gamepad_add(2).is_err());
        assert!(f.gamepad_add(3).is_err());
        assert!(!health.gamepads());
        let problem = health.problem().unwrap_or_default();
        assert!(
            problem.starts_with("new gamepads cannot be created"),
            "{problem}"
        );
        // Keyboard and mouse are unaffected, and nothing was failed over.
        assert!(f.key(30, true).is_ok());
        assert_eq!(
            (health.backend(), health.failures.load(Ordering::Relaxed)),
            ("uinput", 0)
        );
        node.store(true, Ordering::Relaxed);
        assert!(f.gamepad_add(2).is_ok());
        assert!(health.gamepads());
        assert_eq!(health.problem(), None);
    }
}
