//! Files the controller's page uploads, saved on the desktop: into one
//! directory (`~/Downloads` unless told), under a safe name (no path, no
//! control characters; never over an existing file: `name (2).ext`), written
//! to a hidden part file first, which is removed if the upload does not
//! finish. Nothing in here knows WebRTC (`media::files_channel` does).

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Room left on the disk beyond the file itself.
const SPARE_BYTES: u64 = 16 << 20;
/// The longest name kept, in bytes (file systems take 255).
const MAX_NAME_BYTES: usize = 200;
/// `name (2).ext` up to this number, then refused.
const MAX_COPIES: u32 = 999;

/// Why an upload was not taken or did not finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Over `--upload-max-bytes`.
    TooLarge,
    /// The disk would be (nearly) full.
    NoSpace,
    /// Another upload is under way on this connection.
    Busy,
    /// More bytes than offered, or than the page's window allows, or bytes
    /// with no upload under way.
    Unexpected,
    /// A message that is not part of the protocol.
    Malformed,
    /// Writing failed (the disk, permissions).
    Io,
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Refusal::TooLarge => "too_large",
            Refusal::NoSpace => "no_space",
            Refusal::Busy => "busy",
            Refusal::Unexpected => "unexpected",
            Refusal::Malformed => "malformed",
            Refusal::Io => "io",
        }
    }
}

/// What was saved, for /metrics.
#[derive(Debug, Default)]
pub struct UploadStats {
    pub saved: AtomicU64,
    pub bytes: AtomicU64,
    pub cancelled: AtomicU64,
    pub refused: [AtomicU64; 6],
}

impl UploadStats {
    pub fn refused(&self, why: Refusal) {
        self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, s: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(
            s,
            "# HELP oriel_uploads_total Files the controller uploaded, by outcome.\n# TYPE oriel_uploads_total counter\noriel_uploads_total{{result=\"saved\"}} {}\noriel_uploads_total{{result=\"cancelled\"}} {}",
            self.saved.load(Ordering::Relaxed),
            self.cancelled.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP oriel_upload_bytes_total Bytes of files saved.\n# TYPE oriel_upload_bytes_total counter\noriel_upload_bytes_total {}",
            self.bytes.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP oriel_uploads_refused_total Uploads refused or stopped, and stray messages, by reason.\n# TYPE oriel_uploads_refused_total counter"
        );
        for why in [
            Refusal::TooLarge,
            Refusal::NoSpace,
            Refusal::Busy,
            Refusal::Unexpected,
            Refusal::Malformed,
            Refusal::Io,
        ] {
            let _ = writeln!(
                s,
                "oriel_uploads_refused_total{{reason=\"{}\"}} {}",
                why.label(),
                self.refused[why as usize].load(Ordering::Relaxed)
            );
        }
    }
}

/// Where uploads go, and how large they may be.
#[derive(Debug)]
pub struct UploadDir {
    pub dir: PathBuf,
    pub max_bytes: u64,
}

impl UploadDir {
    /// `--upload-dir`, else `$XDG_DOWNLOAD_DIR`, else `~/Downloads`.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(d) = std::env::var_os("XDG_DOWNLOAD_DIR").filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(d));
        }
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join("Downloads"))
    }

    /// Starts saving `name` of `size` bytes: the size and the free space
    /// are checked, the part file created.
    pub fn begin(&self, name: &str, size: u64) -> Result<Upload, Refusal> {
        if size > self.max_bytes {
            return Err(Refusal::TooLarge);
        }
        let name = safe_name(name);
        std::fs::create_dir_all(&self.dir).map_err(|e| {
            tracing::warn!("upload directory {}: {e}", self.dir.display());
            Refusal::Io
        })?;
        match free_bytes(&self.dir) {
            Some(free) if free < size.saturating_add(SPARE_BYTES) => return Err(Refusal::NoSpace),
            _ => {}
        }
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let part = self.dir.join(format!(
            ".oriel-upload-{}-{}.part",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            // What the user's programs create (the umask applies).
            .mode(0o666)
            .open(&part)
            .map_err(|e| {
                tracing::warn!("creating {}: {e}", part.display());
                Refusal::Io
            })?;
        Ok(Upload {
            dir: self.dir.clone(),
            part,
            file: Some(file),
            name,
            size,
            written: 0,
        })
    }
}

/// One file being saved; dropped before `finish`, its part file goes.
#[derive(Debug)]
pub struct Upload {
    dir: PathBuf,
    part: PathBuf,
    file: Option<File>,
    name: String,
    pub size: u64,
    pub written: u64,
}

impl Upload {
    /// The name it will be saved under (or the first free one like it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes of the file, in order; more than it was offered with is
    /// `Unexpected`.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), Refusal> {
        if self.written + bytes.len() as u64 > self.size {
            return Err(Refusal::Unexpected);
        }
        let file = self.file.as_mut().ok_or(Refusal::Io)?;
        file.write_all(bytes).map_err(|e| {
            tracing::warn!("writing {}: {e}", self.part.display());
            if e.raw_os_error() == Some(libc::ENOSPC) {
                Refusal::NoSpace
            } else {
                Refusal::Io
            }
        })?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    pub fn complete(&self) -> bool {
        self.written == self.size
    }

    /// Puts the file in place under the first free name; the path.
    pub fn finish(mut self) -> Result<PathBuf, Refusal> {
        let file = self.file.take().ok_or(Refusal::Io)?;
        file.sync_all().map_err(|_| Refusal::Io)?;
        drop(file);
        let (stem, ext) = split_ext(&self.name);
        for n in 1..=MAX_COPIES {
            let name = if n == 1 {
                self.name.clone()
            } else {
                format!("{stem} ({n}){ext}")
            };
            let target = self.dir.join(&name);
            // A hard link never replaces an existing file: the check and
            // the move are one step.
            match std::fs::hard_link(&self.part, &target) {
                Ok(()) => {
                    let _ = std::fs::remove_file(&self.part);
                    return Ok(target);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    // No hard links here (a FAT stick): rename if free.
                    if !target.exists() && std::fs::rename(&self.part, &target).is_ok() {
                        return Ok(target);
                    }
                    tracing::warn!("saving {}: {e}", target.display());
                    return Err(Refusal::Io);
                }
            }
        }
        Err(Refusal::Io)
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.file.take().is_some() || self.part.exists() {
            let _ = std::fs::remove_file(&self.part);
        }
    }
}

/// A name that is only a name: the last path component, without control
/// characters, not hidden, not empty, at most MAX_NAME_BYTES.
pub fn safe_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = last
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .trim_start_matches('.')
        .to_string();
    let mut out = String::new();
    for c in clean.chars() {
        if out.len() + c.len_utf8() > MAX_NAME_BYTES {
            break;
        }
        out.push(c);
    }
    if out.is_empty() {
        "upload".into()
    } else {
        out
    }
}

/// `a.tar.gz` -> (`a.tar`, `.gz`); `README` -> (`README`, ``).
fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => name.split_at(i),
        _ => (name, ""),
    }
}

/// Bytes free for an unprivileged user on `dir`'s file system.
fn free_bytes(dir: &Path) -> Option<u64> {
    let c = CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a struct to fill, for the call only.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

#[cfg(test)]
mod tests;
