//! The room as `serve` sets it up: what every client is told on joining
//! (video, input), its seats, and fresh ICE credentials per client.

use crate::config::ServeArgs;
use crate::input::service::InputHandle;
use crate::media::ice::IceServers;
use crate::protocol::{IceServer, InputInfo, VideoInfo};
use crate::session::links::{Store, StoreCredentials};
use crate::session::room::{IceSource, Room, RoomConfig};

pub fn room(
    args: &ServeArgs,
    encoder_name: &str,
    input: Option<&InputHandle>,
    ice: IceServers,
    store: &Store,
) -> Room {
    Room::new(
        RoomConfig {
            max_clients: args.max_clients as usize,
            video: VideoInfo {
                codec: "H264".into(),
                encoder: encoder_name.into(),
                framerate: args.media.framerate,
            },
            input: InputInfo {
                backend: input.map_or("none", |i| i.backend).into(),
                gamepads: input.is_some_and(|i| i.gamepads),
            },
            // Video and the data channels' application line.
            media_lines: 2,
            max_slot: args.max_players,
        },
        Box::new(StoreCredentials::new(store)),
    )
    .with_ice(browser_ice(ice))
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
