//! Which shared monitor to capture: the portal's streams numbered from the
//! left, and the Nth picked for `--monitor N`.

use std::path::Path;

/// One stream of a started session, as [`pick_stream`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shared {
    node: u32,
    position: Option<(i32, i32)>,
    size: Option<(i32, i32)>,
}

impl std::fmt::Display for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.size {
            Some((w, h)) => write!(f, "{w}x{h}")?,
            None => write!(f, "size unknown")?,
        }
        match self.position {
            Some((x, y)) => write!(f, " at {x},{y}"),
            None => write!(f, " (position unknown)"),
        }
    }
}

/// The stream to capture: with several shared monitors (`--monitor N`, or
/// a grant that covers several), the Nth from the left (ties: from the
/// top; the portal lists them in no such order), the leftmost for `auto`.
/// A number beyond the shared ones is an error that lists them: the grant
/// has to be made again with more monitors selected.
pub(super) fn pick_stream(
    streams: &[ashpd::desktop::screencast::Stream],
    monitor: Option<u32>,
    token_file: &Path,
) -> Result<(u32, Option<(i32, i32)>), String> {
    if streams.is_empty() {
        return Err("the ScreenCast portal started without a stream".to_string());
    }
    let shared: Vec<Shared> = streams
        .iter()
        .map(|s| Shared {
            node: s.pipe_wire_node_id(),
            position: s.position(),
            size: s.size(),
        })
        .collect();
    let (sorted, index) = choose(shared, monitor).map_err(|list| {
        format!(
            "--monitor {}: screen sharing covers {} ({list}); to share more, select them \
             in the dialog (delete {} to be asked again)",
            monitor.unwrap_or(1),
            match streams.len() {
                1 => "1 monitor".to_string(),
                n => format!("{n} monitors"),
            },
            token_file.display()
        )
    })?;
    if sorted.len() > 1 {
        tracing::info!(
            monitors = %numbered(&sorted),
            chosen = index + 1,
            "the portal shares several monitors: --monitor N picks one"
        );
    }
    let s = sorted[index];
    Ok((s.node, s.size))
}

/// Sorts the shared monitors left to right and says which one to show
/// (its index), or, when there is no such one, their numbered list.
fn choose(mut shared: Vec<Shared>, monitor: Option<u32>) -> Result<(Vec<Shared>, usize), String> {
    // By x, then y; a stream without a position goes last.
    shared.sort_by_key(|s| s.position.unwrap_or((i32::MAX, i32::MAX)));
    let index = monitor.map_or(0, |n| n.saturating_sub(1) as usize);
    if index < shared.len() {
        Ok((shared, index))
    } else {
        Err(numbered(&shared))
    }
}

/// `1: 1280x720 at 0,0; 2: 800x600 at 1280,0`
fn numbered(shared: &[Shared]) -> String {
    shared
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{}: {s}", i + 1))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(node: u32, x: i32, y: i32, w: i32, h: i32) -> Shared {
        Shared {
            node,
            position: Some((x, y)),
            size: Some((w, h)),
        }
    }

    #[test]
    fn monitors_count_from_the_left() {
        // The order mutter 43's portal gave: the right monitor first.
        let right = shared(42, 1280, 0, 800, 600);
        let left = shared(40, 0, 0, 1280, 720);
        let pick = |m| choose(vec![right, left], m).map(|(s, i)| s[i].node);
        assert_eq!(pick(None), Ok(40), "auto: the leftmost");
        assert_eq!(pick(Some(1)), Ok(40));
        assert_eq!(pick(Some(2)), Ok(42));
        assert_eq!(
            pick(Some(3)),
            Err("1: 1280x720 at 0,0; 2: 800x600 at 1280,0".to_string()),
            "out of range: the list of what is shared"
        );
        // Stacked monitors: top first; unknown positions last.
        let top = shared(1, 0, 0, 800, 600);
        let below = shared(2, 0, 600, 800, 600);
        let nowhere = Shared {
            node: 3,
            position: None,
            size: None,
        };
        let (sorted, _) = choose(vec![nowhere, below, top], None).unwrap();
        assert_eq!(sorted.iter().map(|s| s.node).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(numbered(&sorted[2..]), "1: size unknown (position unknown)");
        assert!(choose(vec![], None).is_err());
    }
}
