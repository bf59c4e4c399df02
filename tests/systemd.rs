//! Running under systemd: the unit file verifies, and the agent speaks the
//! notify protocol (READY=1 when listening, WATCHDOG=1 while alive,
//! STOPPING=1 and exit 0 on SIGTERM), checked with a real notify socket.

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("oriel-sd-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn unit_file_passes_systemd_analyze_verify() {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        panic!("systemd-analyze missing: make test installs systemd");
    };
    assert!(out.status.success());
    // Verify a copy whose ExecStart points at the binary just built (the
    // real one points at ~/.local/bin, which `make install` fills).
    let dir = temp_dir("unit");
    let unit = std::fs::read_to_string("systemd/oriel.service").unwrap();
    let unit = unit.replace("%h/.local/bin/oriel", env!("CARGO_BIN_EXE_oriel"));
    let path = dir.join("oriel.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Lines about units we do not ship (the host's own) are not ours.
    let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("oriel")).collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify: {stderr}"
    );
}

#[test]
fn notify_ready_watchdog_and_stopping() {
    let dir = temp_dir("notify");
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_oriel"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--capture",
            "test",
            "--state-dir",
        ])
        .arg(dir.join("state"))
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .env("JOURNAL_STREAM", "8:12345")
        .env_remove("WATCHDOG_PID")
        .env_remove("DISPLAY")
        .stdout(std::fs::File::create(dir.join("journal")).unwrap())
        .stderr(std::fs::File::create(dir.join("journal.err")).unwrap())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && seen.iter().filter(|s| *s == "WATCHDOG=1").count() < 2 {
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    assert_eq!(
        seen.first().map(String::as_str),
        Some("READY=1"),
        "{seen:?}"
    );
    assert!(
        seen.iter().filter(|s| *s == "WATCHDOG=1").count() >= 2,
        "{seen:?}"
    );
    // SAFETY: plain kill(2) on our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stopping = false;
    while Instant::now() < deadline && !stopping {
        if let Ok(n) = sock.recv(&mut buf) {
            stopping = &buf[..n] == b"STOPPING=1";
        }
    }
    assert!(stopping, "no STOPPING=1 after SIGTERM");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");

    // Under systemd the journal gets no token: the controller link is in a
    // file only the user can read.
    let journal = std::fs::read_to_string(dir.join("journal")).unwrap()
        + &std::fs::read_to_string(dir.join("journal.err")).unwrap();
    assert!(
        !journal.contains("#token="),
        "a token in the journal:\n{journal}"
    );
    assert!(journal.contains("controller link in "), "{journal}");
    let link_file = dir.join("state").join("controller-link");
    let link = std::fs::read_to_string(&link_file).unwrap();
    assert!(link.contains("#token="), "{link}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&link_file).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o077,
        0,
        "controller-link readable by others: {mode:o}"
    );
    // No timestamps or colours: journald adds its own.
    assert!(
        !journal.contains("\u{1b}["),
        "colour codes in the journal:\n{journal}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
