//! Publishing the shared encode into an SFU (Janus VideoRoom, any WHIP
//! endpoint) for audiences larger than one desktop can serve. Each target
//! is one more peer on the producer's tee (no second encoder), driven by
//! its own task ([`publisher`]) that plays the browser's part of the
//! signalling against the SFU's HTTP API.
//!
//! ```text
//! media service ── MediaEvent (offer, candidates, state) ──► Publishing ─► target task ─► SFU (HTTP)
//!               ◄── answer, remove/re-add on failure ────────────────────┘
//! ```

pub mod janus;
pub mod publisher;
pub mod sdp;
pub mod target;
pub mod whip;

use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Result};
use tokio::sync::{mpsc, oneshot};

use crate::media::service::{MediaEvent, MediaHandle};
use crate::media::PeerId;
use publisher::{Control, Publisher, State, Status};
pub use target::Secrets;
use target::Target;

/// Media peer ids of publish targets: far above any browser's. Target `i`
/// uses `PEER_BASE + (i << ATTEMPT_BITS) + attempt`, a new id per attempt,
/// so a late event of a removed branch is never taken for the new one's.
pub const PEER_BASE: PeerId = 1 << 62;
pub const ATTEMPT_BITS: u32 = 32;

/// The target index a publish peer id belongs to.
pub fn target_of(peer: PeerId) -> Option<usize> {
    peer.checked_sub(PEER_BASE)
        .map(|offset| (offset >> ATTEMPT_BITS) as usize)
}

struct Entry {
    target: Target,
    events: mpsc::UnboundedSender<MediaEvent>,
    control: mpsc::UnboundedSender<Control>,
    status: Arc<Mutex<Status>>,
}

/// Every publish target and its task; cheap to clone.
#[derive(Clone, Default)]
pub struct Publishing {
    entries: Arc<Vec<Entry>>,
}

impl Publishing {
    /// Starts one task per target (targets with `start=auto` begin
    /// publishing at once). Must run inside the tokio runtime.
    pub fn start(targets: Vec<Target>, secrets: Secrets, media: MediaHandle) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(15))
            .user_agent(concat!("oriel/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow!("HTTP client: {e}"))?;
        let mut entries = Vec::new();
        for (i, target) in targets.into_iter().enumerate() {
            let peer = PEER_BASE + ((i as PeerId) << ATTEMPT_BITS);
            let status = Arc::new(Mutex::new(Status {
                name: target.name.clone(),
                kind: target.kind_name(),
                state: State::Stopped,
                error: None,
                failures: 0,
                sessions: 0,
                by: if target.autostart { "config" } else { "" }.into(),
            }));
            let (events_tx, events_rx) = mpsc::unbounded_channel();
            let (control_tx, control_rx) = mpsc::unbounded_channel();
            tracing::info!(
                target = %target,
                start = if target.autostart { "now" } else { "on request" },
                "publish target"
            );
            let task = Publisher {
                target: target.clone(),
                peer,
                media: media.clone(),
                secrets: secrets.clone(),
                http: http.clone(),
                status: status.clone(),
            };
            tokio::spawn(task.run(events_rx, control_rx));
            entries.push(Entry {
                target,
                events: events_tx,
                control: control_tx,
                status,
            });
        }
        Ok(Publishing {
            entries: Arc::new(entries),
        })
    }

    /// Hands a media event to the target it belongs to; `false` when it is
    /// not a target's (a browser's, or for everyone).
    pub fn media_event(&self, event: &MediaEvent) -> bool {
        let Some(peer) = event.peer() else {
            return false;
        };
        match target_of(peer) {
            Some(i) => {
                if let Some(e) = self.entries.get(i) {
                    let _ = e.events.send(event.clone());
                }
                true
            }
            None => false,
        }
    }

    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.entries.iter().map(|e| &e.target)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The target called `name`, or the only one when `name` is `None`.
    fn entry(&self, name: Option<&str>) -> Result<&Entry, String> {
        match name {
            Some(n) => self
                .entries
                .iter()
                .find(|e| e.target.name == n)
                .ok_or_else(|| {
                    let names: Vec<&str> = self
                        .entries
                        .iter()
                        .map(|e| e.target.name.as_str())
                        .collect();
                    if names.is_empty() {
                        "no publish target is configured (--publish)".to_string()
                    } else {
                        format!("no publish target `{n}` (configured: {})", names.join(", "))
                    }
                }),
            None => match self.entries.as_slice() {
                [only] => Ok(only),
                [] => Err("no publish target is configured (--publish)".into()),
                _ => Err("several publish targets are configured: name one".into()),
            },
        }
    }

    /// Starts (`true`) or stops publishing to a target; `by` says who asked
    /// (for the log). Returns once the task took the request.
    pub async fn set(&self, name: Option<&str>, on: bool, by: &str) -> Result<Status, String> {
        let entry = self.entry(name)?;
        let (tx, rx) = oneshot::channel();
        let msg = if on {
            Control::Start(by.to_string(), tx)
        } else {
            Control::Stop(by.to_string(), tx)
        };
        entry
            .control
            .send(msg)
            .map_err(|_| "the publish task has stopped".to_string())?;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), rx).await;
        entry
            .status
            .lock()
            .map(|s| s.clone())
            .map_err(|_| "publish status unavailable".to_string())
    }

    /// Leaves every SFU politely (Janus session destroyed, WHIP resource
    /// deleted), so the slot is free for the next start.
    pub async fn shutdown(&self) {
        let mut waits = Vec::new();
        for e in self.entries.iter() {
            let (tx, rx) = oneshot::channel();
            if e.control.send(Control::Stop("shutdown".into(), tx)).is_ok() {
                waits.push(rx);
            }
        }
        for rx in waits {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), rx).await;
        }
    }

    /// Origins of the Janus APIs browsers use (`--via-sfu` pages fetch them).
    pub fn browser_origins(&self) -> Vec<String> {
        self.targets()
            .filter(|t| matches!(t.kind, target::Kind::Janus { .. }))
            .filter_map(|t| reqwest::Url::parse(t.public_url()).ok())
            .map(|u| u.origin().ascii_serialization())
            .collect()
    }

    /// Every target's status, in configuration order.
    pub fn statuses(&self) -> Vec<Status> {
        self.entries
            .iter()
            .filter_map(|e| e.status.lock().ok().map(|s| s.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// State before news: what a start or stop request answers is the
    /// state it caused, not the one before (a start once answered
    /// `stopped`, a stop `connecting`, until the task looped).
    #[test]
    fn start_and_stop_answer_the_new_state() {
        gst::init().unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let media =
            crate::media::service::spawn(crate::media::service::test_pattern(), |_| {}).unwrap();
        // Nothing listens on port 9: every attempt fails and is retried.
        let target = target::parse("whip:http://127.0.0.1:9/whip,start=manual").unwrap();
        rt.block_on(async {
            let p = Publishing::start(vec![target], Secrets::default(), media.clone()).unwrap();
            let name = p.statuses()[0].name.clone();
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            assert_eq!(p.statuses()[0].state, State::Stopped);
            let started = p.set(Some(&name), true, "test").await.unwrap();
            assert!(
                matches!(started.state, State::Connecting | State::Retrying),
                "after start: {:?}",
                started.state
            );
            assert_eq!(started.by, "test");
            let stopped = p.set(Some(&name), false, "test-stop").await.unwrap();
            assert_eq!(stopped.state, State::Stopped);
            assert_eq!(stopped.by, "test-stop");
            p.shutdown().await;
        });
        media.shutdown(std::time::Duration::from_secs(2));
    }

    #[test]
    fn peer_ids_name_their_target_across_attempts() {
        assert_eq!(target_of(1), None);
        assert_eq!(target_of(PEER_BASE - 1), None);
        assert_eq!(target_of(PEER_BASE), Some(0));
        assert_eq!(target_of(PEER_BASE + 7), Some(0));
        assert_eq!(target_of(PEER_BASE + (3 << ATTEMPT_BITS) + 9), Some(3));
    }
}
