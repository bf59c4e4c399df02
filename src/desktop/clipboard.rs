//! The desktop's clipboard, shared with the controller's browser: what the
//! two sides exchange (`Content`), how big it may be (`Limits`), and the
//! counters `/metrics` shows. The platform code that watches and owns the
//! selection lives beside the rest of it (`desktop::x11::clipboard`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// The MIME types on the wire (docs/protocol.md, "Clipboard").
pub const TEXT_MIME: &str = "text/plain;charset=utf-8";
pub const PNG_MIME: &str = "image/png";

/// One clipboard's worth, either way.
#[derive(Clone, PartialEq, Eq)]
pub enum Content {
    Text(String),
    /// A PNG file's bytes, as X11's `image/png` target and the browser's
    /// `ClipboardItem` both carry it.
    Png(Vec<u8>),
}

impl std::fmt::Debug for Content {
    // A clipboard may hold a password: its size, never its bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} bytes)", self.mime(), self.bytes().len())
    }
}

impl Content {
    pub fn mime(&self) -> &'static str {
        match self {
            Content::Text(_) => TEXT_MIME,
            Content::Png(_) => PNG_MIME,
        }
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            Content::Text(t) => t.as_bytes(),
            Content::Png(p) => p,
        }
    }
}

/// Why a clipboard was not passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Over the limit for its kind.
    TooLarge,
    /// Not UTF-8 text, not a PNG, a MIME type we do not take, or framing
    /// that does not add up.
    Malformed,
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Refusal::TooLarge => "too_large",
            Refusal::Malformed => "malformed",
        }
    }
}

/// The largest clipboard taken or sent, by kind (`--clipboard-max-text`,
/// `--clipboard-max-image`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub text: usize,
    pub image: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            text: 1 << 20,
            image: 8 << 20,
        }
    }
}

/// The PNG file signature.
const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

impl Limits {
    /// The most a clipboard of `mime` may hold; `None`: not a type we take.
    pub fn for_mime(&self, mime: &str) -> Option<usize> {
        match mime {
            TEXT_MIME => Some(self.text),
            PNG_MIME => Some(self.image),
            _ => None,
        }
    }

    /// `bytes` of type `mime` as content, if it is what it says and fits.
    pub fn content(&self, mime: &str, bytes: Vec<u8>) -> Result<Content, Refusal> {
        let limit = self.for_mime(mime).ok_or(Refusal::Malformed)?;
        if bytes.len() > limit {
            return Err(Refusal::TooLarge);
        }
        match mime {
            TEXT_MIME => String::from_utf8(bytes)
                .map(Content::Text)
                .map_err(|_| Refusal::Malformed),
            _ if bytes.starts_with(PNG_MAGIC) => Ok(Content::Png(bytes)),
            _ => Err(Refusal::Malformed),
        }
    }
}

/// What `/metrics` shows of the clipboard.
#[derive(Debug, Default)]
pub struct ClipboardStats {
    /// The desktop's clipboard sent to the controller's page.
    pub to_browser: AtomicU64,
    /// The controller's paste set on the desktop.
    pub to_desktop: AtomicU64,
    pub too_large: AtomicU64,
    pub malformed: AtomicU64,
}

impl ClipboardStats {
    pub fn refused(&self, why: Refusal) {
        match why {
            Refusal::TooLarge => &self.too_large,
            Refusal::Malformed => &self.malformed,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// Its lines in the Prometheus text format.
    pub fn render(&self, s: &mut String) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            s,
            "# HELP oriel_clipboard_transfers_total Clipboards passed between the desktop and the controller's page.\n\
             # TYPE oriel_clipboard_transfers_total counter\n\
             oriel_clipboard_transfers_total{{direction=\"to_browser\"}} {}\n\
             oriel_clipboard_transfers_total{{direction=\"to_desktop\"}} {}\n\
             # HELP oriel_clipboard_refused_total Clipboards not passed on, by reason (too_large, malformed).\n\
             # TYPE oriel_clipboard_refused_total counter\n\
             oriel_clipboard_refused_total{{reason=\"too_large\"}} {}\n\
             oriel_clipboard_refused_total{{reason=\"malformed\"}} {}",
            get(&self.to_browser),
            get(&self.to_desktop),
            get(&self.too_large),
            get(&self.malformed),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_checked_against_its_type_and_limit() {
        let limits = Limits { text: 8, image: 16 };
        assert_eq!(
            limits.content(TEXT_MIME, "héllo".into()),
            Ok(Content::Text("héllo".into()))
        );
        assert_eq!(
            limits.content(TEXT_MIME, vec![b'a'; 9]),
            Err(Refusal::TooLarge)
        );
        assert_eq!(
            limits.content(TEXT_MIME, vec![0xff, 0xfe]),
            Err(Refusal::Malformed),
            "not UTF-8"
        );
        let png = [PNG_MAGIC, b"rest"].concat();
        assert_eq!(limits.content(PNG_MIME, png.clone()), Ok(Content::Png(png)));
        assert_eq!(
            limits.content(PNG_MIME, b"GIF89a".to_vec()),
            Err(Refusal::Malformed),
            "an image that is no PNG"
        );
        assert_eq!(
            limits.content("text/html", b"<b>".to_vec()),
            Err(Refusal::Malformed)
        );
    }

    #[test]
    fn debug_shows_the_size_not_the_text() {
        let shown = format!("{:?}", Content::Text("hunter2".into()));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("7 bytes"), "{shown}");
    }
}
