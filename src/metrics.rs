//! Prometheus text exposition of what the agent is doing, and `/healthz`.
//! Counters live where they are counted (media service, room); this module
//! only gathers and renders them.

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::media::service::MediaStats;
use crate::media::PeerId;
use crate::session::roles::Role;
use crate::session::room::RoomStats;

/// A snapshot of the room, published by the signalling actor after each
/// input (the room itself lives inside that actor).
#[derive(Debug, Default, Clone)]
pub struct RoomSnapshot {
    pub clients: usize,
    pub joined: usize,
    pub stats: RoomStats,
    /// Each media session's peer and role.
    pub sessions: Vec<(PeerId, Role)>,
}

/// Reads one counter of a client's traffic.
type TrafficValue = fn(&crate::media::traffic::PeerTraffic) -> u64;

pub struct Metrics {
    pub media: Arc<MediaStats>,
    pub room: Mutex<RoomSnapshot>,
    pub encoder: String,
    pub capture: String,
    /// The sound sent (`sound::Plan::summary`), or why there is none.
    pub audio: String,
    /// WebSocket upgrades refused for their `Origin`.
    pub origin_refused: std::sync::atomic::AtomicU64,
    /// Hellos refused for their token, and refused unchecked by the limiter.
    pub token_failures: std::sync::atomic::AtomicU64,
    pub token_rate_limited: std::sync::atomic::AtomicU64,
    /// TLS handshakes that failed or timed out (plain HTTP to the HTTPS
    /// port, scanners, untrusting clients).
    pub tls_handshake_failed: Arc<std::sync::atomic::AtomicU64>,
    pub input: Option<Arc<crate::input::service::InputStats>>,
    pub input_backend: String,
    /// What injects input now (uinput may have failed over to XTest).
    pub input_health: Option<Arc<crate::input::failover::Health>>,
    /// Control requests refused as malformed.
    pub control_refused: std::sync::atomic::AtomicU64,
    /// SFU publish targets, when any are configured.
    pub publishing: Option<crate::publish::Publishing>,
    /// Connections refused or cut off, and open now.
    pub connections: Arc<crate::signalling::counters::ConnectionCounters>,
    pub clipboard: Option<Arc<crate::desktop::clipboard::ClipboardStats>>,
    pub pointer: Option<Arc<crate::media::pointer_channel::PointerHub>>,
    pub uploads: Option<Arc<crate::desktop::uploads::UploadStats>>,
}

#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    pub clients: usize,
    pub peers: u64,
    pub pipeline: &'static str,
    pub encoder: String,
    pub capture: String,
    pub audio: String,
}

impl Metrics {
    pub fn new(media: Arc<MediaStats>, encoder: String, capture: String) -> Self {
        Metrics {
            media,
            room: Mutex::new(RoomSnapshot::default()),
            encoder,
            capture,
            audio: "off".into(),
            origin_refused: Default::default(),
            token_failures: Default::default(),
            token_rate_limited: Default::default(),
            tls_handshake_failed: Default::default(),
            input: None,
            input_backend: "none".into(),
            input_health: None,
            control_refused: Default::default(),
            publishing: None,
            connections: Default::default(),
            clipboard: None,
            pointer: None,
            uploads: None,
        }
    }

    /// Per-client RTP counters, labelled with the session's peer id and role.
    fn render_traffic(&self, s: &mut String, room: &RoomSnapshot) {
        let traffic: Vec<_> = match self.media.traffic.lock() {
            Ok(t) => t.iter().map(|(p, t)| (*p, t.clone())).collect(),
            Err(_) => return,
        };
        let role_of = |peer: PeerId| {
            room.sessions
                .iter()
                .find(|(p, _)| *p == peer)
                .map(|(_, r)| match r {
                    Role::Player { slot } => format!("player\",slot=\"{slot}"),
                    r => r.name().to_string(),
                })
                .unwrap_or_else(|| "unknown".into())
        };
        let families: [(&str, &str, TrafficValue); 10] = [
            (
                "oriel_client_sent_bytes_total",
                "RTP bytes handed to each client's webrtcbin (before SRTP).",
                |t| t.bytes_sent.load(Ordering::Relaxed),
            ),
            (
                "oriel_client_sent_packets_total",
                "RTP packets handed to each client's webrtcbin.",
                |t| t.packets_sent.load(Ordering::Relaxed),
            ),
            (
                "oriel_client_dropped_packets_total",
                "RTP packets dropped by a client's queue because it fell behind.",
                |t| t.dropped(),
            ),
            (
                "oriel_client_retransmitted_packets_total",
                "Retransmissions (RTX) sent to each client after its NACKs.",
                |t| t.retransmitted.load(Ordering::Relaxed),
            ),
            (
                "oriel_client_retransmissions_dropped_total",
                "Retransmissions not sent because they exceeded 20 % of the client's link estimate.",
                |t| t.rtx_dropped.load(Ordering::Relaxed),
            ),
            (
                "oriel_client_nack_requests_total",
                "Packets each client asked to have resent (NACK).",
                |t| t.nack_requests.load(Ordering::Relaxed),
            ),
            (
                "oriel_client_estimate_bps",
                "Congestion estimate of each client's link from its TWCC feedback, bit/s (0 before the first).",
                |t| t.estimate_bps.load(Ordering::Relaxed),
            ),
            (
                "oriel_client_loss_permille",
                "Packet loss each client's feedback reports, smoothed, in thousandths.",
                |t| t.loss_permille.load(Ordering::Relaxed),
            ),
            (
                "oriel_client_without_feedback",
                "1 when a client declined or never sent congestion feedback (TWCC): its packets go without the extension, at the full rate of its rung.",
                |t| t.without_feedback.load(Ordering::Relaxed),
            ),
            (
                "oriel_client_inbound_dropped_packets_total",
                "SCTP packets from each client dropped over its data-channel budget (320 KiB/s).",
                |t| t.inbound_dropped.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in families {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (peer, t) in &traffic {
                let _ = writeln!(
                    s,
                    "{name}{{peer=\"{peer}\",role=\"{}\"}} {}",
                    role_of(*peer),
                    value(t)
                );
            }
        }
    }

    /// Each SFU target's state, failed attempts and live sessions.
    fn render_publishing(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "# HELP oriel_control_refused_total Control requests refused as malformed.\n# TYPE oriel_control_refused_total counter\noriel_control_refused_total {}",
            self.control_refused.load(Ordering::Relaxed)
        );
        let Some(p) = &self.publishing else { return };
        let statuses = p.statuses();
        let _ = writeln!(
            s,
            "# HELP oriel_publish_state Each SFU target's state (1 for the current one).\n# TYPE oriel_publish_state gauge"
        );
        for st in &statuses {
            for state in ["stopped", "connecting", "live", "retrying"] {
                let now = serde_json::to_value(st.state).ok();
                let on = now.as_ref().and_then(|v| v.as_str()) == Some(state);
                let _ = writeln!(
                    s,
                    "oriel_publish_state{{target=\"{}\",kind=\"{}\",state=\"{state}\"}} {}",
                    st.name, st.kind, on as u8
                );
            }
        }
        for (name, help, value) in [
            (
                "oriel_publish_failures_total",
                "Publish attempts to an SFU that failed (each is retried with backoff).",
                (|st: &crate::publish::publisher::Status| st.failures) as fn(&_) -> u64,
            ),
            (
                "oriel_publish_sessions_total",
                "Sessions with an SFU that went live.",
                |st| st.sessions,
            ),
        ] {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter");
            for st in &statuses {
                let _ = writeln!(s, "{name}{{target=\"{}\"}} {}", st.name, value(st));
            }
        }
    }

    fn room(&self) -> RoomSnapshot {
        self.room.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn health(&self) -> Health {
        let room = self.room();
        Health {
            status: "ok",
            clients: room.clients,
            peers: self.media.peers.load(Ordering::Relaxed),
            // Recovering: the capture was lost (display gone) and is retried
            // while clients wait; a stopped pipeline is an idle one.
            pipeline: if self.media.recovering.load(Ordering::Relaxed) {
                "recovering"
            } else if self.media.pipeline_running.load(Ordering::Relaxed) {
                "playing"
            } else {
                "stopped"
            },
            encoder: self.encoder.clone(),
            capture: self.capture.clone(),
            audio: self.audio.clone(),
        }
    }

    pub fn render(&self) -> String {
        let room = self.room();
        let m = &self.media;
        let mut s = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "oriel_clients",
            "gauge",
            "Connected signalling clients.",
            room.clients as u64,
        );
        metric(
            "oriel_frames_captured_total",
            "counter",
            "Raw frames that reached the shared encoder.",
            m.frames.captured.load(Ordering::Relaxed),
        );
        metric(
            "oriel_frames_encoded_total",
            "counter",
            "Encoded frames out of the shared encoder (one encode for every client).",
            m.frames.encoded.load(Ordering::Relaxed),
        );
        metric(
            "oriel_frames_dropped_total",
            "counter",
            "Frames the encoder took in and did not give out (includes the one in flight).",
            m.frames.dropped(),
        );
        metric(
            "oriel_token_failures_total",
            "counter",
            "Hellos refused for a bad, expired or revoked token.",
            self.token_failures.load(Ordering::Relaxed),
        );
        metric(
            "oriel_token_rate_limited_total",
            "counter",
            "Hellos refused unchecked because their address failed too often.",
            self.token_rate_limited.load(Ordering::Relaxed),
        );
        metric(
            "oriel_peers",
            "gauge",
            "Live media branches (one per watching client).",
            m.peers.load(Ordering::Relaxed),
        );
        metric(
            "oriel_pipeline_running",
            "gauge",
            "1 while the capture and encoder run.",
            m.pipeline_running.load(Ordering::Relaxed) as u64,
        );
        metric(
            "oriel_pipeline_recovering",
            "gauge",
            "1 while the capture is lost and retried (clients wait for it).",
            m.recovering.load(Ordering::Relaxed) as u64,
        );
        metric(
            "oriel_pipeline_starts_total",
            "counter",
            "Times capture and encoder were started.",
            m.pipeline_starts.load(Ordering::Relaxed),
        );
        metric(
            "oriel_pipeline_failures_total",
            "counter",
            "Times the shared pipeline failed.",
            m.pipeline_failures.load(Ordering::Relaxed),
        );
        metric(
            "oriel_pipeline_restarts_total",
            "counter",
            "Times capture and encoder came back after a failure (e.g. the X server restarted).",
            m.pipeline_restarts.load(Ordering::Relaxed),
        );
        metric(
            "oriel_audio_failures_total",
            "counter",
            "Times the sound capture failed (its server went away) while the picture went on.",
            m.audio_failures.load(Ordering::Relaxed),
        );
        metric(
            "oriel_audio_refused_total",
            "counter",
            "Answers that would have sent audio from a client other than the controller (kept from sending).",
            m.audio_refused.load(Ordering::Relaxed),
        );
        let r = &m.recording;
        metric(
            "oriel_recording_active",
            "gauge",
            "1 while a recording file is being written.",
            r.active.load(Ordering::Relaxed) as u64,
        );
        metric(
            "oriel_recording_frames_total",
            "counter",
            "Encoded frames written to recording files.",
            r.frames.load(Ordering::Relaxed),
        );
        metric(
            "oriel_recording_bytes_total",
            "counter",
            "Bytes written to recording files.",
            r.bytes.load(Ordering::Relaxed),
        );
        metric(
            "oriel_recording_dropped_packets_total",
            "counter",
            "RTP packets a recording lost because the disk did not keep up.",
            r.dropped_packets.load(Ordering::Relaxed),
        );
        metric(
            "oriel_keyframes_requested_total",
            "counter",
            "Keyframe requests from clients (joins, PLI, FIR).",
            m.keyframes_requested.load(Ordering::Relaxed),
        );
        metric(
            "oriel_keyframes_forced_total",
            "counter",
            "Keyframes forced on the shared encoder.",
            m.keyframes_forced.load(Ordering::Relaxed),
        );
        metric(
            "oriel_encoder_bitrate_kbps",
            "gauge",
            "The shared encoder's target bitrate (follows the controller's and players' links), kbit/s.",
            m.encoder_bitrate_kbps.load(Ordering::Relaxed),
        );
        metric(
            "oriel_video_encoders",
            "gauge",
            "Video encoders in the producer's pipeline (the shared one, plus the cheaper rung while slow viewers read it).",
            m.encoders.load(Ordering::Relaxed),
        );
        metric(
            "oriel_rungs",
            "gauge",
            "Extra encodes running for viewers on slow links (at most 1).",
            m.rungs.load(Ordering::Relaxed),
        );
        metric(
            "oriel_rung_bitrate_kbps",
            "gauge",
            "The cheaper rung's bitrate (follows its slowest viewer), kbit/s; 0 without one.",
            m.rung_bitrate_kbps.load(Ordering::Relaxed),
        );
        metric(
            "oriel_keyframes_coalesced_total",
            "counter",
            "Keyframe requests merged into another.",
            m.keyframes_coalesced.load(Ordering::Relaxed),
        );
        metric(
            "oriel_foreign_data_channels_total",
            "counter",
            "Clients cut off for opening a data channel of their own (only the agent opens channels).",
            m.foreign_channels.load(Ordering::Relaxed),
        );
        metric(
            "oriel_branches_outlived_total",
            "counter",
            "Removed client branches still alive 10 s later (each is logged with its client).",
            m.branches_outlived.load(Ordering::Relaxed),
        );
        metric(
            "oriel_joins_total",
            "counter",
            "Clients that joined a media session.",
            room.stats.joins,
        );
        metric(
            "oriel_mdns_candidates_dropped_total",
            "counter",
            "Remote .local ICE candidates dropped.",
            room.stats.mdns_candidates_dropped,
        );
        metric(
            "oriel_origin_refused_total",
            "counter",
            "WebSocket upgrades refused for their Origin.",
            self.origin_refused.load(Ordering::Relaxed),
        );
        metric(
            "oriel_tls_handshake_failures_total",
            "counter",
            "TLS handshakes that failed or timed out.",
            self.tls_handshake_failed.load(Ordering::Relaxed),
        );
        let f = &m.frames;
        f.capture_to_converted.render(
            &mut s,
            "oriel_capture_to_converted_seconds",
            "Frame capture timestamp to the raw frame out of the colour conversion, pipeline clock",
        );
        f.capture_to_encoded.render(
            &mut s,
            "oriel_capture_to_encoded_seconds",
            "Frame capture timestamp to the encoded frame leaving the encoder (capture, conversion, encoding), pipeline clock",
        );
        f.capture_to_payloaded.render(
            &mut s,
            "oriel_capture_to_payloaded_seconds",
            "Frame capture timestamp to its RTP packets entering the fan-out tee (parse and payload done), pipeline clock",
        );
        f.capture_to_sent.render(
            &mut s,
            "oriel_capture_to_sent_seconds",
            "Frame capture timestamp to its last video packet handed to a client's socket (after its queue, webrtcbin, SRTP), every client counted, pipeline clock",
        );
        let _ = writeln!(
            s,
            "# HELP oriel_clients_by_role Clients with a media session, by role (`pending`: connected, no session yet).\n# TYPE oriel_clients_by_role gauge"
        );
        let count = |name: &str| {
            room.sessions
                .iter()
                .filter(|(_, r)| r.name() == name)
                .count()
        };
        for role in ["controller", "viewer", "player"] {
            let _ = writeln!(
                s,
                "oriel_clients_by_role{{role=\"{role}\"}} {}",
                count(role)
            );
        }
        let _ = writeln!(
            s,
            "oriel_clients_by_role{{role=\"pending\"}} {}",
            room.clients.saturating_sub(room.sessions.len())
        );
        self.render_traffic(&mut s, &room);
        crate::media::capture_counters::counters().render(&mut s);
        self.render_publishing(&mut s);
        render_recording_failures(&mut s, &m.recording);
        self.connections.render(&mut s);
        if let Some(h) = &self.input_health {
            render_input_health(&mut s, h);
        }
        if let Some(c) = &self.clipboard {
            c.render(&mut s);
        }
        if let Some(p) = &self.pointer {
            p.render(&mut s);
        }
        if let Some(u) = &self.uploads {
            u.render(&mut s);
        }
        let _ = writeln!(
            s,
            "# HELP oriel_signalling_errors_total Client messages refused, by error code.\n# TYPE oriel_signalling_errors_total counter"
        );
        for (code, n) in &room.stats.errors {
            let _ = writeln!(
                s,
                "oriel_signalling_errors_total{{code=\"{}\"}} {n}",
                code.as_str()
            );
        }
        if let Some(input) = &self.input {
            let _ = writeln!(
                s,
                "# HELP oriel_input_injected_total Input events injected.\n# TYPE oriel_input_injected_total counter\noriel_input_injected_total {}",
                input.injected.load(Ordering::Relaxed)
            );
            let _ = writeln!(
                s,
                "# HELP oriel_input_dropped_total Input messages dropped, by reason.\n# TYPE oriel_input_dropped_total counter"
            );
            for (reason, n) in input.dropped_snapshot() {
                let _ = writeln!(s, "oriel_input_dropped_total{{reason=\"{reason}\"}} {n}");
            }
            if let Some(l) = input.latency_summary() {
                let _ = writeln!(
                    s,
                    "# HELP oriel_input_latency_seconds Data-channel arrival to injection done, recent {} events (quantile 1 is the maximum).\n# TYPE oriel_input_latency_seconds summary",
                    l.samples
                );
                for (q, us) in [
                    ("0.5", l.p50),
                    ("0.95", l.p95),
                    ("0.99", l.p99),
                    ("1", l.max),
                ] {
                    let _ = writeln!(
                        s,
                        "oriel_input_latency_seconds{{quantile=\"{q}\"}} {}",
                        us as f64 / 1e6
                    );
                }
            }
        }
        let _ = writeln!(
            s,
            "# HELP oriel_info Static facts about this agent.\n# TYPE oriel_info gauge\noriel_info{{encoder=\"{}\",capture=\"{}\",input=\"{}\",version=\"{}\"}} 1",
            self.encoder,
            self.capture,
            self.input_health
                .as_ref()
                .map_or(self.input_backend.as_str(), |h| h.backend()),
            env!("CARGO_PKG_VERSION")
        );
        s
    }
}

/// Recordings that ended on their own, one series per reason (all present
/// from the start, at 0).
fn render_recording_failures(s: &mut String, r: &crate::media::recording::RecordingStats) {
    let _ = writeln!(
        s,
        "# HELP oriel_recording_failures_total Recordings that ended on an error (a full disk), the stream going on, by reason.\n# TYPE oriel_recording_failures_total counter"
    );
    for kind in crate::media::recording::FailureKind::ALL {
        let n = r.failures[kind as usize].load(Ordering::Relaxed);
        let _ = writeln!(
            s,
            "oriel_recording_failures_total{{reason=\"{}\"}} {n}",
            kind.as_str()
        );
    }
}

/// Whether input reaches the desktop now, and how often its devices were lost.
fn render_input_health(s: &mut String, h: &crate::input::failover::Health) {
    let _ = writeln!(
        s,
        "# HELP oriel_input_available 1 while some backend injects input (0: its devices were lost and nothing took over).\n# TYPE oriel_input_available gauge\noriel_input_available {}",
        u8::from(h.backend() != "none")
    );
    let _ = writeln!(
        s,
        "# HELP oriel_input_backend_failures_total Times the input backend's devices stopped taking input (uinput gone).\n# TYPE oriel_input_backend_failures_total counter\noriel_input_backend_failures_total {}",
        h.failures.load(Ordering::Relaxed)
    );
}
