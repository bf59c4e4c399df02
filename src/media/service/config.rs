//! How the media service is set up: producer, ICE, timings, sources.

use std::sync::Arc;
use std::time::Duration;

use super::source::{LiveSource, SourceCheck};
use crate::media::ice::IceServers;
use crate::media::producer::ProducerConfig;

#[derive(Clone)]
pub struct MediaConfig {
    pub producer: ProducerConfig,
    /// STUN/TURN servers; each peer's webrtcbin gets its own credentials.
    pub ice: IceServers,
    pub keyframe_interval: Duration,
    pub idle_stop: Duration,
    /// How long the producer may take to deliver its first encoded frame.
    pub start_timeout: Duration,
    /// Where data-channel bytes go; `None` opens no data channels.
    pub input: Option<crate::media::peer::InputSink>,
    /// Asked before each rebuild after a failure; `None` always tries.
    pub source_check: Option<SourceCheck>,
    /// Opened before each producer start; its fragment replaces
    /// `producer.capture`.
    pub live_source: Option<Arc<dyn LiveSource>>,
}
