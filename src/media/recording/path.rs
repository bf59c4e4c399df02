//! Where a recording goes: the path check, never-overwriting file names,
//! and the UTC time stamps in names and logs.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};

/// Checks a recording path before anything is captured: a directory that
/// exists (files are named there by time), or a `.mkv` file in a directory
/// that exists.
pub fn check_path(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    let is_mkv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mkv"));
    if !is_mkv {
        bail!(
            "recording path {}: expected a file name ending in .mkv or an existing directory",
            path.display()
        );
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        bail!(
            "recording path {}: the directory {} does not exist",
            path.display(),
            parent.display()
        );
    }
    Ok(())
}

/// Creates the file a recording writes to, never overwriting one: a
/// directory gets `oriel-YYYYMMDD-HHMMSSZ.mkv` (UTC) inside; a file name
/// that is taken becomes `NAME-2.mkv`, `NAME-3.mkv`, ... (so a recording
/// continued after a capture loss lands next to its first part). The file
/// is created exclusively here, so two recordings never share one.
pub fn create_file(path: &Path, now: SystemTime) -> Result<PathBuf> {
    check_path(path)?;
    let base = if path.is_dir() {
        path.join(format!("oriel-{}.mkv", compact_utc(now)))
    } else {
        path.to_owned()
    };
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = base
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "mkv".into());
    for n in 1..10_000u32 {
        let candidate = if n == 1 {
            base.clone()
        } else {
            base.with_file_name(format!("{stem}-{n}.{ext}"))
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(_) => return Ok(candidate),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => bail!("cannot create the recording {}: {e}", candidate.display()),
        }
    }
    bail!(
        "cannot create the recording {}: every name up to {stem}-9999.{ext} is taken",
        base.display()
    )
}

/// `2026-11-30T06:54:23Z`, for logs.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil_utc(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `20261130-065423Z`, for file names.
fn compact_utc(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil_utc(t);
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}Z")
}

/// Calendar date and time (UTC) of `t`: Howard Hinnant's days-to-civil.
fn civil_utc(t: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}
