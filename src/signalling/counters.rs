//! What the server refused or cut off, by reason: counted for `/metrics`
//! and logged without flooding the journal (the first of a kind is logged
//! at once, then at most one line per kind every [`LOG_EVERY`], saying how
//! many were not logged in between).

use std::fmt::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Connections turned away before they were served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A WebSocket upgrade over the per-address limit (HTTP 429).
    PerAddress,
    /// A WebSocket upgrade over the total limit (HTTP 503).
    Total,
    /// A TCP connection over the per-address limit (closed at once).
    HttpPerAddress,
    /// A TCP connection over the total limit (closed at once).
    HttpTotal,
    /// A hello with a link cut off for flooding its input, from the same
    /// address, within its cool-down (`session::cooldown`; close 1008).
    FloodCoolDown,
}

impl Refused {
    pub const ALL: [Refused; 5] = [
        Refused::PerAddress,
        Refused::Total,
        Refused::HttpPerAddress,
        Refused::HttpTotal,
        Refused::FloodCoolDown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refused::PerAddress => "per_address",
            Refused::Total => "total",
            Refused::HttpPerAddress => "http_per_address",
            Refused::HttpTotal => "http_total",
            Refused::FloodCoolDown => "flood_cooldown",
        }
    }
}

/// Connections the agent closed because of what the client did (or did not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// A WebSocket that had not joined (`hello`) within the deadline.
    HelloTimeout,
    /// A frame or message above the size limit (close 1009).
    TooLarge,
    /// The client did not read: its outgoing queue filled, or a send
    /// stalled past the deadline.
    NotReading,
    /// Input data channels flooded past the rate limit for too long.
    InputFlood,
    /// Nothing heard for the keepalive timeout.
    Keepalive,
    /// An HTTP connection that sent no complete request in time.
    HttpHeaderTimeout,
}

impl Cut {
    pub const ALL: [Cut; 6] = [
        Cut::HelloTimeout,
        Cut::TooLarge,
        Cut::NotReading,
        Cut::InputFlood,
        Cut::Keepalive,
        Cut::HttpHeaderTimeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Cut::HelloTimeout => "hello_timeout",
            Cut::TooLarge => "too_large",
            Cut::NotReading => "not_reading",
            Cut::InputFlood => "input_flood",
            Cut::Keepalive => "keepalive_timeout",
            Cut::HttpHeaderTimeout => "http_header_timeout",
        }
    }
}

/// One log line per kind at most this often.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// Decides which events of one kind get a log line: the first, then one
/// per [`LOG_EVERY`]. Pure: the caller passes the time.
#[derive(Debug, Default)]
pub struct LogGate {
    last: Option<Instant>,
    quiet: u64,
}

impl LogGate {
    /// `Some(n)`: log this one, mentioning the `n` not logged since the
    /// last line. `None`: count it silently.
    pub fn pass(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < LOG_EVERY => {
                self.quiet += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.quiet))
            }
        }
    }
}

/// The counters behind `oriel_refused_connections_total`,
/// `oriel_cut_connections_total` and `oriel_signalling_throttled_total`.
#[derive(Debug, Default)]
pub struct ConnectionCounters {
    refused: [AtomicU64; 5],
    cut: [AtomicU64; 6],
    /// Times a socket's reads were paused because it sent faster than the
    /// signalling rate limit.
    pub throttled: AtomicU64,
    /// Open right now (gauges).
    pub open_http: AtomicU64,
    pub open_websockets: AtomicU64,
    gates: Mutex<[LogGate; 11]>,
}

impl ConnectionCounters {
    /// Counts a refusal and logs it (rate-limited).
    pub fn refused(&self, why: Refused, addr: IpAddr, detail: &str) {
        let i = Refused::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.refused[i].fetch_add(1, Ordering::Relaxed);
        if let Some(quiet) = self.gate(i) {
            tracing::warn!(
                %addr,
                reason = why.as_str(),
                not_logged = quiet,
                "connection refused: {detail}"
            );
        }
    }

    /// Counts a cut-off connection and logs it (rate-limited).
    pub fn cut(&self, why: Cut, addr: Option<IpAddr>, detail: &str) {
        let i = Cut::ALL.iter().position(|c| *c == why).unwrap_or(0);
        self.cut[i].fetch_add(1, Ordering::Relaxed);
        if let Some(quiet) = self.gate(Refused::ALL.len() + i) {
            let addr = addr.map(|a| a.to_string()).unwrap_or_default();
            tracing::info!(
                addr,
                reason = why.as_str(),
                not_logged = quiet,
                "connection cut off: {detail}"
            );
        }
    }

    pub fn refused_count(&self, why: Refused) -> u64 {
        let i = Refused::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.refused[i].load(Ordering::Relaxed)
    }

    pub fn cut_count(&self, why: Cut) -> u64 {
        let i = Cut::ALL.iter().position(|c| *c == why).unwrap_or(0);
        self.cut[i].load(Ordering::Relaxed)
    }

    /// Counts an open connection (a WebSocket session, or a plain HTTP
    /// one) until the guard is dropped.
    pub fn opened(counters: &Arc<Self>, websocket: bool) -> OpenGuard {
        counters.gauge(websocket).fetch_add(1, Ordering::Relaxed);
        OpenGuard {
            counters: counters.clone(),
            websocket,
        }
    }

    fn gauge(&self, websocket: bool) -> &AtomicU64 {
        if websocket {
            &self.open_websockets
        } else {
            &self.open_http
        }
    }

    fn gate(&self, i: usize) -> Option<u64> {
        let mut gates = self.gates.lock().ok()?;
        gates.get_mut(i)?.pass(Instant::now())
    }

    /// The Prometheus text of these counters.
    pub fn render(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "# HELP oriel_refused_connections_total Connections refused before being served, by reason (per_address/total: WebSocket upgrades answered 429/503; http_*: TCP connections closed at once; flood_cooldown: hellos with a link cut off for an input flood, from the same address, within its cool-down).\n# TYPE oriel_refused_connections_total counter"
        );
        for why in Refused::ALL {
            let _ = writeln!(
                s,
                "oriel_refused_connections_total{{reason=\"{}\"}} {}",
                why.as_str(),
                self.refused_count(why)
            );
        }
        let _ = writeln!(
            s,
            "# HELP oriel_cut_connections_total Connections the agent closed because of the client, by reason.\n# TYPE oriel_cut_connections_total counter"
        );
        for why in Cut::ALL {
            let _ = writeln!(
                s,
                "oriel_cut_connections_total{{reason=\"{}\"}} {}",
                why.as_str(),
                self.cut_count(why)
            );
        }
        let _ = writeln!(
            s,
            "# HELP oriel_signalling_throttled_total Times a WebSocket's reads were paused because it sent above the signalling rate limit.\n# TYPE oriel_signalling_throttled_total counter\noriel_signalling_throttled_total {}",
            self.throttled.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP oriel_open_connections Connections open now: HTTP (not upgraded) and WebSocket sessions.\n# TYPE oriel_open_connections gauge\noriel_open_connections{{kind=\"http\"}} {}\noriel_open_connections{{kind=\"websocket\"}} {}",
            self.open_http.load(Ordering::Relaxed),
            self.open_websockets.load(Ordering::Relaxed)
        );
    }
}

/// One open connection in the `oriel_open_connections` gauge.
pub struct OpenGuard {
    counters: Arc<ConnectionCounters>,
    websocket: bool,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        let _ = self.counters.gauge(self.websocket).fetch_update(
            Ordering::Relaxed,
            Ordering::Relaxed,
            |n| n.checked_sub(1),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_logs_the_first_then_one_per_period_with_the_quiet_count() {
        let t0 = Instant::now();
        let mut g = LogGate::default();
        assert_eq!(g.pass(t0), Some(0));
        for i in 1..=99 {
            assert_eq!(g.pass(t0 + Duration::from_millis(i * 10)), None);
        }
        assert_eq!(g.pass(t0 + LOG_EVERY), Some(99));
        assert_eq!(g.pass(t0 + LOG_EVERY + Duration::from_secs(1)), None);
        assert_eq!(g.pass(t0 + LOG_EVERY * 3), Some(1));
    }

    #[test]
    fn counts_render_by_reason() {
        let c = ConnectionCounters::default();
        let ip = IpAddr::from([192, 0, 2, 1]);
        for _ in 0..3 {
            c.refused(Refused::PerAddress, ip, "test");
        }
        c.cut(Cut::NotReading, Some(ip), "test");
        let mut s = String::new();
        c.render(&mut s);
        assert!(s.contains("oriel_refused_connections_total{reason=\"per_address\"} 3"));
        assert!(s.contains("oriel_refused_connections_total{reason=\"http_total\"} 0"));
        assert!(s.contains("oriel_cut_connections_total{reason=\"not_reading\"} 1"));
        assert!(s.contains("oriel_open_connections{kind=\"websocket\"} 0"));
    }
}
