//! SDP text helpers for SFU signalling: WHIP sends the offer in one POST,
//! so the candidates gathered by then go into it; later ones are trickled
//! as an `application/trickle-ice-sdpfrag` (RFC 8840).

/// Line ending used by the SDP (webrtcbin writes CRLF).
fn eol(sdp: &str) -> &'static str {
    if sdp.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    }
}

/// Adds `candidates` (`(mline, "candidate:...")`) to their media sections,
/// each section marked complete when `complete`.
pub fn with_candidates(sdp: &str, candidates: &[(u32, String)], complete: bool) -> String {
    let nl = eol(sdp);
    let mut out = String::with_capacity(sdp.len() + candidates.len() * 100);
    let mut mline: Option<u32> = None;
    let close = |out: &mut String, m: Option<u32>| {
        if let Some(m) = m {
            for (_, c) in candidates.iter().filter(|(i, _)| *i == m) {
                out.push_str("a=");
                out.push_str(c.trim_start_matches("a="));
                out.push_str(nl);
            }
            if complete {
                out.push_str("a=end-of-candidates");
                out.push_str(nl);
            }
        }
    };
    for line in sdp.lines() {
        if line.starts_with("m=") {
            close(&mut out, mline);
            mline = Some(mline.map_or(0, |m| m + 1));
        }
        if !line.is_empty() {
            out.push_str(line);
            out.push_str(nl);
        }
    }
    close(&mut out, mline);
    out
}

/// The ICE credentials and the first media section's `mid` of an SDP.
fn ice_identity(sdp: &str) -> (Option<&str>, Option<&str>, Option<&str>) {
    let find = |prefix: &str| {
        sdp.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
    };
    (find("a=ice-ufrag:"), find("a=ice-pwd:"), find("a=mid:"))
}

/// An RFC 8840 fragment carrying `candidates` of the offer `sdp`.
pub fn trickle_fragment(sdp: &str, candidates: &[String], complete: bool) -> String {
    let (ufrag, pwd, mid) = ice_identity(sdp);
    let mut out = String::new();
    if let Some(u) = ufrag {
        out.push_str(&format!("a=ice-ufrag:{u}\r\n"));
    }
    if let Some(p) = pwd {
        out.push_str(&format!("a=ice-pwd:{p}\r\n"));
    }
    out.push_str("m=video 9 UDP/TLS/RTP/SAVPF 0\r\n");
    if let Some(m) = mid {
        out.push_str(&format!("a=mid:{m}\r\n"));
    }
    for c in candidates {
        out.push_str(&format!("a={}\r\n", c.trim_start_matches("a=")));
    }
    if complete {
        out.push_str("a=end-of-candidates\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str =
        "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE video0\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:UF\r\na=ice-pwd:PW\r\n\
        a=mid:video0\r\na=sendonly\r\na=rtpmap:96 H264/90000\r\n";

    #[test]
    fn candidates_go_into_their_section() {
        let c = vec![
            (
                0,
                "candidate:1 1 UDP 2015363327 192.0.2.2 40000 typ host".to_string(),
            ),
            (
                0,
                "a=candidate:2 1 TCP 1015021823 192.0.2.2 9 typ host tcptype active".to_string(),
            ),
        ];
        let sdp = with_candidates(OFFER, &c, true);
        let tail: Vec<&str> = sdp.lines().rev().take(3).collect();
        assert_eq!(tail[0], "a=end-of-candidates");
        assert!(tail[1].starts_with("a=candidate:2 "), "{sdp}");
        assert!(tail[2].starts_with("a=candidate:1 "), "{sdp}");
        assert!(sdp.contains("a=rtpmap:96 H264/90000\r\na=candidate:1"));
        assert!(!sdp.contains("a=a="));
    }

    #[test]
    fn two_sections_each_get_their_own() {
        let two = format!("{OFFER}m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:1\r\n");
        let c = vec![(1, "candidate:9 1 UDP 1 10.0.0.1 5 typ host".to_string())];
        let sdp = with_candidates(&two, &c, false);
        let m1 = sdp.find("m=application").unwrap();
        assert!(sdp.find("candidate:9").unwrap() > m1);
        assert!(!sdp.contains("end-of-candidates"));
    }

    #[test]
    fn trickle_fragment_names_ice_identity() {
        let f = trickle_fragment(
            OFFER,
            &["candidate:1 1 UDP 5 192.0.2.2 4 typ host".into()],
            false,
        );
        assert_eq!(
            f,
            "a=ice-ufrag:UF\r\na=ice-pwd:PW\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:video0\r\n\
             a=candidate:1 1 UDP 5 192.0.2.2 4 typ host\r\n"
        );
    }
}
