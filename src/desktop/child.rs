//! Programs oriel starts for the desktop it serves (Xvfb, the session
//! command, its own sound server): they die with oriel, and stop in order.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Make the child die with us: a crashed agent must not leave displays behind.
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
}

/// SIGTERM, then SIGKILL after 2 s. A session is stopped as a process
/// group, even when its leader already exited: what it started may not have.
pub fn stop(child: &mut Child, group: bool) {
    let pid = child.id() as i32;
    let leader_alive = matches!(child.try_wait(), Ok(None));
    // SAFETY: plain kill(2) on a child we own, or on its process group.
    let signal = |sig| unsafe {
        libc::kill(if group { -pid } else { pid }, sig);
    };
    if leader_alive || group {
        signal(libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while leader_alive && Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if group {
        signal(libc::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The full path of `program` on `$PATH`.
pub fn which(program: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|p| p.join(program))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}
