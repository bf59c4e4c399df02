//! Media: capture the desktop, encode it once, and fan the encoded stream out
//! to one webrtcbin per client. Nothing in here knows about WebSockets or
//! JSON; the signalling layer drives it through [`service::MediaHandle`].

pub mod audio;
pub mod backoff;
pub mod capture;
pub mod capture_counters;
pub mod channels;
pub mod clipboard_channel;
pub mod congestion;
pub mod data_channel;
pub mod encoder;
pub mod feedback_guard;
pub mod files_channel;
pub mod files_send;
pub mod fragments;
pub mod frame_drop;
pub mod gate;
pub mod header_ext;
pub mod heap;
pub mod ice;
pub mod keyframes;
pub mod leaks;
pub mod leftover;
pub mod link;
pub mod microphone;
pub mod pace;
pub mod pacer;
pub mod peer;
pub mod pointer_channel;
pub mod probe;
pub mod producer;
pub mod receive_guard;
pub mod recording;
pub mod renumber;
pub mod rtcp_seen;
pub mod rung;
pub mod sctp_budget;
pub mod service;
pub mod traffic;
pub mod trial;
pub mod twcc;
pub mod x11src;

/// Identifies one client's media branch.
pub type PeerId = u64;
