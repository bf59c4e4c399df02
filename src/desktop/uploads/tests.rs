use super::*;

fn dir() -> (tempdir::Dir, UploadDir) {
    let d = tempdir::Dir::new();
    let u = UploadDir {
        dir: d.0.join("Downloads"),
        max_bytes: 1 << 20,
    };
    (d, u)
}

/// A private directory removed after the test (no crate for it).
mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Self {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "oriel-uploads-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn listing(u: &UploadDir) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(&u.dir)
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
fn names_are_only_names() {
    assert_eq!(safe_name("report.pdf"), "report.pdf");
    assert_eq!(safe_name("../../etc/passwd"), "passwd");
    assert_eq!(safe_name("C:\\Users\\me\\x.txt"), "x.txt");
    assert_eq!(safe_name(".bashrc"), "bashrc", "not hidden");
    assert_eq!(safe_name("a\u{0}b\nc\u{7f}.txt"), "abc.txt");
    assert_eq!(safe_name(".."), "upload");
    assert_eq!(safe_name("dir/"), "upload");
    assert_eq!(safe_name("  "), "upload");
    let long = "é".repeat(300);
    let cut = safe_name(&long);
    assert!(cut.len() <= MAX_NAME_BYTES && cut.chars().all(|c| c == 'é'));
    assert_eq!(split_ext("a.tar.gz"), ("a.tar", ".gz"));
    assert_eq!(split_ext("README"), ("README", ""));
}

#[test]
fn a_finished_upload_never_overwrites() {
    let (_d, u) = dir();
    for expect in ["notes.txt", "notes (2).txt", "notes (3).txt"] {
        let mut up = u.begin("notes.txt", 5).unwrap();
        up.write(b"hello").unwrap();
        assert!(up.complete());
        let path = up.finish().unwrap();
        assert_eq!(path.file_name().unwrap().to_str().unwrap(), expect);
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
    }
    assert_eq!(
        listing(&u),
        ["notes (2).txt", "notes (3).txt", "notes.txt"],
        "no part file left"
    );
}

#[test]
fn an_unfinished_upload_leaves_nothing() {
    let (_d, u) = dir();
    let mut up = u.begin("big.bin", 10).unwrap();
    up.write(b"12345").unwrap();
    assert_eq!(listing(&u).len(), 1, "the part file while it runs");
    assert_eq!(
        up.write(b"123456"),
        Err(Refusal::Unexpected),
        "more than offered"
    );
    drop(up);
    assert!(listing(&u).is_empty(), "{:?}", listing(&u));
}

#[test]
fn too_large_and_no_space_are_refused_before_any_byte() {
    let (_d, mut u) = dir();
    assert_eq!(u.begin("x", (1 << 20) + 1).unwrap_err(), Refusal::TooLarge);
    u.max_bytes = u64::MAX;
    assert_eq!(u.begin("x", u64::MAX / 2).unwrap_err(), Refusal::NoSpace);
    assert!(listing(&u).is_empty());
}
