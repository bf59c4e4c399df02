//! A lost device is logged once, not once per event. This test counts log
//! lines, so it lives alone in its own binary: tracing caches each
//! callsite's interest globally, and a test on another thread meeting the
//! same callsite with no subscriber could cache "never" under us (CI saw
//! the WARN line go missing that way when this test sat with the others).

use std::io::Write;
use std::sync::{Arc, Mutex};

use oriel_input::backend::Backend;
use oriel_input::failover::{Failover, Opener};
use oriel_input::record::Recorder;

type Lines = Arc<Mutex<Vec<String>>>;

/// Linux's ENODEV: what a uinput fd says once its device is gone.
const ENODEV: i32 = 19;

/// A writer whose writes fail with ENODEV once `ok` of them went through.
struct FailAfter {
    ok: usize,
    lines: Lines,
}

impl Write for FailAfter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.ok == 0 {
            return Err(std::io::Error::from_raw_os_error(ENODEV));
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

fn failing(ok: usize, lines: &Lines) -> Box<dyn Backend> {
    Box::new(Recorder::new(FailAfter {
        ok,
        lines: lines.clone(),
    }))
}

fn memory(lines: &Lines) -> Opener {
    let lines = lines.clone();
    Box::new(move || Ok(failing(usize::MAX, &lines)))
}

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_lost_device_is_logged_once_not_per_event() {
    let buf = Buf::default();
    let out = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || out.clone())
        .finish();
    // The only test in this process: a global subscriber is safe here.
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let (first, second): (Lines, Lines) = (Arc::default(), Arc::default());
    let mut with = Failover::new(
        failing(1, &first),
        Some(("XTest on :9".into(), memory(&second))),
        None,
    );
    let mut without = Failover::new(failing(1, &first), None, None);
    for i in 0..200 {
        let _ = with.pointer_rel(i, 1);
        let _ = without.pointer_rel(i, 1);
    }
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    let logged: Vec<&str> = text.lines().collect();
    assert_eq!(logged.len(), 2, "{logged:#?}");
    assert!(
        logged[0].contains("WARN") && logged[0].contains("go through XTest on :9"),
        "{}",
        logged[0]
    );
    assert!(
        logged[1].contains("ERROR") && logged[1].contains("input is off"),
        "{}",
        logged[1]
    );
    assert_eq!(second.lock().unwrap().len(), 199);
}
