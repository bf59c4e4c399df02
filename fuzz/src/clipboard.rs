//! The `clipboard` data channel's framing
//! (`media::clipboard_channel::Assembler`): a controller's page sends text
//! headers and binary pieces in any order. The fuzzer's bytes are read as
//! messages, each one kind byte (even: text, odd: binary), one length byte
//! and that many bytes. Whatever comes, nothing panics, a clipboard that
//! comes out is within its limit and is what its type says.

use oriel::desktop::clipboard::{Content, Limits};
use oriel::media::clipboard_channel::Assembler;

const LIMIT: usize = 4096;

/// The fuzzer's bytes as (is binary, message) pairs.
pub fn messages(mut data: &[u8]) -> Vec<(bool, &[u8])> {
    let mut out = Vec::new();
    while let [kind, len, rest @ ..] = data {
        let (msg, after) = rest.split_at(usize::from(*len).min(rest.len()));
        out.push((kind & 1 == 1, msg));
        data = after;
    }
    out
}

pub fn check(data: &[u8]) {
    let mut a = Assembler::new(Limits {
        text: LIMIT,
        image: LIMIT,
    });
    for (binary, msg) in messages(data) {
        let out = if binary {
            a.data(msg)
        } else {
            a.text(&String::from_utf8_lossy(msg))
        };
        if let Some(Ok(content)) = out {
            assert!(content.bytes().len() <= LIMIT, "{content:?}");
            if let Content::Png(png) = &content {
                assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
            }
        }
    }
}
