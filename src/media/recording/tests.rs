//! The recording's tests: path naming, and real pipelines writing, finishing
//! and failing files while a stand-in viewer keeps receiving.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gst::prelude::*;

use super::*;
use crate::media::producer::{Producer, ProducerConfig};

fn tmp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("oriel-rec-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn paths_are_checked_and_never_overwritten() {
    let d = tmp_dir("paths");
    assert!(check_path(&d.join("a.mkv")).is_ok());
    assert!(check_path(&d.join("a.mp4")).is_err());
    assert!(check_path(&d.join("missing/a.mkv")).is_err());
    let t = UNIX_EPOCH + Duration::from_secs(1_796_021_663); // 2026-11-30T06:54:23Z
    let first = create_file(&d.join("a.mkv"), t).unwrap();
    let second = create_file(&d.join("a.mkv"), t).unwrap();
    let third = create_file(&d.join("a.mkv"), t).unwrap();
    assert_eq!(first, d.join("a.mkv"));
    assert_eq!(second, d.join("a-2.mkv"));
    assert_eq!(third, d.join("a-3.mkv"));
    assert_eq!(
        create_file(&d, t).unwrap(),
        d.join("oriel-20261130-065423Z.mkv")
    );
    assert_eq!(
        create_file(&d, t).unwrap(),
        d.join("oriel-20261130-065423Z-2.mkv")
    );
    assert_eq!(rfc3339_utc(t), "2026-11-30T06:54:23Z");
    assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    // 2024-02-29T23:59:59Z, a leap day.
    assert_eq!(
        rfc3339_utc(UNIX_EPOCH + Duration::from_secs(1_709_251_199)),
        "2024-02-29T23:59:59Z"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// A producer like the agent's, with a long GOP: its only keyframes
/// are the forced ones.
fn producer() -> Producer {
    gst::init().unwrap();
    Producer::build(&ProducerConfig {
        capture: "videotestsrc is-live=true pattern=ball \
                  ! video/x-raw,width=320,height=240,framerate=30/1"
            .into(),
        encoder: "video/x-raw,format=I420 ! x264enc speed-preset=ultrafast \
                  tune=zerolatency key-int-max=100000 bframes=0 \
                  ! video/x-h264,profile=constrained-baseline"
            .into(),
        rung_encoder: None,
        playout_delay: None,
        swappable_capture: false,
        sparse_frames: false,
        convert_threads: 1,
        audio: None,
    })
    .unwrap()
}

/// Another consumer of the tee (a stand-in for a viewer's branch): the
/// RTP sequence numbers it saw, to find gaps.
fn viewer(producer: &Producer) -> Arc<Mutex<Vec<u16>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = gst::ElementFactory::make("fakesink")
        .property("async", false)
        .property("sync", false)
        .build()
        .unwrap();
    producer.pipeline().add(&sink).unwrap();
    let s = seen.clone();
    sink.static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                if let Ok(rtp) = gst_rtp::RTPBuffer::from_buffer_readable(b) {
                    s.lock().unwrap().push(rtp.seq());
                }
            }
            gst::PadProbeReturn::Ok
        });
    producer.tee().link(&sink).unwrap();
    seen
}

fn gaps(seqs: &[u16]) -> usize {
    seqs.windows(2)
        .filter(|w| w[1] != w[0].wrapping_add(1))
        .count()
}

/// Plays `path` through decodebin: (frames decoded, first and last
/// timestamp, width, height), or the error.
fn decode(path: &Path) -> Result<(u64, u64, u64, i32, i32), String> {
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! matroskademux ! h264parse ! avdec_h264 name=dec ! fakesink",
        path.display()
    ))
    .unwrap();
    let frames = Arc::new(Mutex::new((0u64, u64::MAX, 0u64, 0i32, 0i32)));
    let f = frames.clone();
    let dec = pipeline
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("dec")
        .unwrap();
    dec.static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                let mut f = f.lock().unwrap();
                f.0 += 1;
                let pts = b.pts().map(|t| t.nseconds()).unwrap_or(0);
                f.1 = f.1.min(pts);
                f.2 = f.2.max(pts);
                if let Some(s) = pad
                    .current_caps()
                    .and_then(|c| c.structure(0).map(|s| s.to_owned()))
                {
                    f.3 = s.get::<i32>("width").unwrap_or(0);
                    f.4 = s.get::<i32>("height").unwrap_or(0);
                }
            }
            gst::PadProbeReturn::Ok
        });
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(20),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    pipeline.set_state(gst::State::Null).unwrap();
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => Ok(*frames.lock().unwrap()),
        Some(gst::MessageView::Error(e)) => Err(e.error().to_string()),
        _ => Err("no end of stream within 20 s".into()),
    }
}

#[test]
fn records_from_a_keyframe_at_zero_and_finishes_while_others_flow() {
    let d = tmp_dir("record");
    let p = producer();
    let seen = viewer(&p);
    p.start().unwrap();
    // The recording starts well after the pipeline did: its file
    // must start at 0 all the same.
    std::thread::sleep(Duration::from_millis(1500));
    let stats = Arc::new(RecordingStats::default());
    let path = create_file(&d.join("r.mkv"), SystemTime::now()).unwrap();
    let rec = RecordingBranch::attach(&p, &path, stats.clone()).unwrap();
    p.force_keyframe();
    assert!(stats.active.load(Ordering::Relaxed));
    std::thread::sleep(Duration::from_secs(3));
    let done = rec.finish(|| {});
    done.recv_timeout(Duration::from_secs(3))
        .expect("EOS reached the file");
    let summary = rec.remove(&p);
    std::thread::sleep(Duration::from_millis(500));
    p.stop();
    assert!(!stats.active.load(Ordering::Relaxed));
    let seqs = seen.lock().unwrap().clone();
    assert!(seqs.len() > 100, "the viewer got {} packets", seqs.len());
    assert_eq!(gaps(&seqs), 0, "the viewer lost packets");

    // ~3 s at 30 fps, from the forced keyframe on.
    assert!(
        (60..=100).contains(&summary.frames),
        "{} frames written",
        summary.frames
    );
    assert!(
        summary.duration > Duration::from_millis(2000)
            && summary.duration < Duration::from_millis(3500),
        "{:?}",
        summary.duration
    );
    assert_eq!(stats.frames.load(Ordering::Relaxed), summary.frames);
    assert!(summary.bytes > 0);
    let (frames, first, last, w, h) = decode(&path).unwrap();
    assert_eq!((w, h), (320, 240));
    assert_eq!(frames, summary.frames, "every written frame decodes");
    assert!(first < 100_000_000, "the file starts at {first} ns, not 0");
    assert!(
        (2_000_000_000..3_500_000_000).contains(&last),
        "last frame at {last} ns"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn finishing_with_nobody_watching_does_not_end_the_stream() {
    let d = tmp_dir("alone");
    let p = producer();
    let bus = p.pipeline().bus().unwrap();
    p.start().unwrap();
    let path = create_file(&d.join("r.mkv"), SystemTime::now()).unwrap();
    let rec = RecordingBranch::attach(&p, &path, Arc::new(RecordingStats::default())).unwrap();
    p.force_keyframe();
    std::thread::sleep(Duration::from_secs(1));
    rec.finish(|| {})
        .recv_timeout(Duration::from_secs(3))
        .expect("EOS reached the file");
    let summary = rec.remove(&p);
    let before = p.buffers.load(Ordering::Relaxed);
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_mseconds(700),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let after = p.buffers.load(Ordering::Relaxed);
    p.stop();
    assert!(msg.is_none(), "the pipeline posted {msg:?}");
    assert!(after > before + 10, "the stream stopped");
    assert!(summary.frames > 10, "{summary:?}");
    assert!(decode(&path).is_ok());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_failing_file_ends_the_recording_not_the_stream() {
    let p = producer();
    let seen = viewer(&p);
    let bus = p.pipeline().bus().unwrap();
    p.start().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // Every write fails with ENOSPC: a full disk.
    let rec = RecordingBranch::attach(
        &p,
        Path::new("/dev/full"),
        Arc::new(RecordingStats::default()),
    )
    .unwrap();
    p.force_keyframe();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut recording_error = None;
    while Instant::now() < deadline && recording_error.is_none() {
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(100),
            &[gst::MessageType::Error],
        ) else {
            continue;
        };
        let from = msg.src().and_then(recording_bin);
        assert_eq!(from.as_deref(), Some(rec.name().as_str()), "{msg:?}");
        // ENOSPC is told apart from other write errors.
        if let gst::MessageView::Error(e) = msg.view() {
            assert_eq!(
                FailureKind::of(&e.error()),
                FailureKind::DiskFull,
                "{msg:?}"
            );
        }
        recording_error = from;
    }
    assert!(recording_error.is_some(), "no error from the recording");
    // The stream goes on for the others, with no error of its own.
    let before = seen.lock().unwrap().len();
    std::thread::sleep(Duration::from_secs(1));
    let summary = rec.remove(&p);
    std::thread::sleep(Duration::from_millis(500));
    let seqs = seen.lock().unwrap().clone();
    while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
        let from = msg.src().and_then(recording_bin);
        assert!(from.is_some(), "an error outside the recording: {msg:?}");
    }
    p.stop();
    assert!(seqs.len() > before + 20, "the stream stopped");
    assert_eq!(gaps(&seqs), 0, "the viewer lost packets");
    assert_eq!(summary.path, Path::new("/dev/full"));
}
