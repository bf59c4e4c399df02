//! The receiver fed messages, over a real directory.

use super::*;

struct Fixture {
    root: std::path::PathBuf,
    stats: Arc<UploadStats>,
    r: Receiver,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn fixture(max_bytes: u64) -> Fixture {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let root = std::env::temp_dir().join(format!(
        "oriel-files-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let stats = Arc::new(UploadStats::default());
    let dir = Arc::new(UploadDir {
        dir: root.clone(),
        max_bytes,
    });
    Fixture {
        r: Receiver::new(dir, stats.clone()),
        root,
        stats,
    }
}

fn parse(replies: &[String]) -> Vec<serde_json::Value> {
    replies
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect()
}

fn files(f: &Fixture) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(&f.root)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn an_upload_is_accepted_acknowledged_and_saved_whole() {
    let mut f = fixture(64 << 20);
    let size = 3 * ACK_EVERY + 17;
    let out = parse(&f.r.text(&format!(
        r#"{{"type":"offer","id":1,"name":"../x.bin","size":{size}}}"#
    )));
    assert_eq!(out[0]["type"], "accept");
    assert_eq!(out[0]["name"], "x.bin");
    assert_eq!(out[0]["window"], WINDOW);
    let body: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let mut acks = Vec::new();
    let mut last = Vec::new();
    for piece in body.chunks(64 << 10) {
        for m in parse(&f.r.data(piece)) {
            match m["type"].as_str() {
                Some("ack") => acks.push(m["received"].as_u64().unwrap()),
                _ => last.push(m),
            }
        }
    }
    assert_eq!(acks, [ACK_EVERY, 2 * ACK_EVERY, 3 * ACK_EVERY]);
    assert_eq!(last.len(), 1);
    assert_eq!(last[0]["type"], "done");
    assert_eq!(last[0]["size"], size);
    assert_eq!(std::fs::read(f.root.join("x.bin")).unwrap(), body);
    assert_eq!(files(&f), ["x.bin"], "no part file left");
    assert_eq!(f.stats.saved.load(Ordering::Relaxed), 1);
    // Bytes after it: nothing under way, counted.
    assert!(f.r.data(b"stray").is_empty());
    assert_eq!(
        f.stats.refused[Refusal::Unexpected as usize].load(Ordering::Relaxed),
        1
    );
}

#[test]
fn an_empty_file_is_done_at_once() {
    let mut f = fixture(1 << 20);
    let out = parse(&f.r.text(r#"{"type":"offer","id":4,"name":"empty","size":0}"#));
    assert_eq!(
        out.iter()
            .map(|m| m["type"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["accept", "done"]
    );
    assert_eq!(std::fs::read(f.root.join("empty")).unwrap(), b"");
}

#[test]
fn more_bytes_than_offered_stop_the_upload_and_leave_no_file() {
    let mut f = fixture(64 << 20);
    f.r.text(r#"{"type":"offer","id":3,"name":"s","size":4}"#);
    let out = parse(&f.r.data(b"12345"));
    assert_eq!(out[0]["type"], "refused");
    assert_eq!(out[0]["reason"], "unexpected");
    assert!(files(&f).is_empty());
}

#[test]
fn offers_are_refused_when_too_large_or_busy_and_cancel_removes_the_part() {
    let mut f = fixture(1000);
    let out = parse(&f.r.text(r#"{"type":"offer","id":1,"name":"a","size":1001}"#));
    assert_eq!(
        (out[0]["type"].as_str(), out[0]["reason"].as_str()),
        (Some("refused"), Some("too_large"))
    );
    f.r.text(r#"{"type":"offer","id":2,"name":"a","size":10}"#);
    let out = parse(&f.r.text(r#"{"type":"offer","id":3,"name":"b","size":10}"#));
    assert_eq!(out[0]["reason"], "busy");
    f.r.data(b"12345");
    assert_eq!(files(&f).len(), 1, "the part file");
    let out = parse(&f.r.text(r#"{"type":"cancel","id":2}"#));
    assert_eq!(out[0]["type"], "cancelled");
    assert!(files(&f).is_empty());
    // Garbage is counted, not fatal.
    assert!(f.r.text("{not json").is_empty());
    assert!(f.r.text(r#"{"type":"offer","id":1}"#).is_empty());
    assert_eq!(
        f.stats.refused[Refusal::Malformed as usize].load(Ordering::Relaxed),
        2
    );
}

#[test]
fn a_page_gone_mid_upload_leaves_no_file() {
    let mut f = fixture(1 << 20);
    f.r.text(r#"{"type":"offer","id":1,"name":"a","size":10}"#);
    f.r.data(b"12345");
    f.r.abandon();
    assert!(files(&f).is_empty());
    assert_eq!(f.stats.cancelled.load(Ordering::Relaxed), 1);
}
