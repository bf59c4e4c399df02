//! The room as `serve` sets it up: what every client is told on joining
//! (video, input as it is at that moment), its seats, and fresh ICE
//! credentials per client.

use crate::config::ServeArgs;
use std::sync::Arc;

use crate::input::failover::Health;
use crate::media::ice::IceServers;
use crate::protocol::{IceServer, InputInfo, VideoInfo};
use crate::session::links::{Store, StoreCredentials};
use crate::session::room::{IceSource, Room, RoomConfig};

pub fn room(
    args: &ServeArgs,
    encoder_name: &str,
    input: Option<&Arc<Health>>,
    ice: IceServers,
    store: &Store,
    clipboard: bool,
    resize: bool,
) -> Room {
    let room = Room::new(
        RoomConfig {
            max_clients: args.max_clients as usize,
            video: VideoInfo {
                codec: "H264".into(),
                encoder: encoder_name.into(),
                framerate: args.media.framerate,
            },
            input: InputInfo {
                backend: "none".into(),
                gamepads: false,
            },
            // Video and the data channels' application line.
            media_lines: 2,
            max_slot: args.max_players,
            clipboard,
            resize,
        },
        Box::new(StoreCredentials::new(store)),
    )
    .with_ice(browser_ice(ice));
    match input {
        // What injects at join time: uinput may have failed over to XTest.
        Some(health) => {
            let health = health.clone();
            room.with_input(Box::new(move || InputInfo {
                backend: health.backend().into(),
                gamepads: health.gamepads(),
            }))
        }
        None => room,
    }
}

/// The room's source of `welcome.iceServers`: fresh credentials per peer.
fn browser_ice(ice: IceServers) -> IceSource {
    Box::new(move |peer| {
        ice.for_browser(&format!("oriel-{peer}"), std::time::SystemTime::now())
            .into_iter()
            .map(|s| IceServer {
                urls: s.urls,
                username: s.username,
                credential: s.credential,
            })
            .collect()
    })
}
