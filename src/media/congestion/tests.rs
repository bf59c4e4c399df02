//! The estimator against a simulated link (what a viewer would feel), and against garbage.

use super::sim::{Link, Sample, Sim};
use super::*;

const MBIT: u64 = 1_000_000;
const MIN: u64 = 100_000;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn mbit(bps: u64) -> f64 {
    bps as f64 / 1e6
}

/// When, from `from` (s) on, `ok` first holds.
fn first(sim: &Sim, from: f64, ok: impl Fn(&Sample) -> bool) -> Option<f64> {
    sim.since(secs(from))
        .find(|s| ok(s))
        .map(|s| s.at.as_secs_f64())
}

/// The first sample in `[from, to)` (s) where `ok` does not hold.
fn broken(sim: &Sim, from: f64, to: f64, ok: impl Fn(&Sample) -> bool) -> Option<Sample> {
    sim.since(secs(from))
        .take_while(|s| s.at < secs(to))
        .find(|s| !ok(s))
        .copied()
}

/// Asserts the estimate reaches `bps` by `by` (s) and then stays there
/// until `until` (s).
fn reaches_and_holds(sim: &Sim, bps: u64, by: f64, until: f64) {
    let at = first(sim, 0.0, |s| s.estimate_bps >= bps).unwrap_or(f64::INFINITY);
    assert!(at <= by, "{} Mbit/s only at {at:.1} s", mbit(bps));
    if let Some(s) = broken(sim, at, until, |s| s.estimate_bps >= bps) {
        let (fell, when) = (mbit(s.estimate_bps), s.at.as_secs_f64());
        panic!("fell to {fell:.2} Mbit/s at {when:.1} s");
    }
}

fn lossy(loss: f64) -> Link {
    Link {
        loss,
        ..Link::new(100 * MBIT)
    }
}

// A 100 Mbit/s path never queues at these rates: a perfect link.
#[test]
fn a_perfect_link_reaches_the_maximum_within_10_s_and_stays() {
    let mut sim = Sim::new(lossy(0.0), Estimator::new(MBIT, MIN, 4 * MBIT), 1);
    sim.run_for(secs(30.0));
    // Measured: 3.6 Mbit/s at 5.9 s, 4 Mbit/s from 6.4 s on.
    reaches_and_holds(&sim, 3_600_000, 10.0, 30.0);
    assert!(sim
        .since(secs(1.0))
        .take_while(|s| s.at < secs(5.0))
        .all(|s| s.state == "increase"));
}

/// 20 s at 8 Mbit/s, 10 s at 1 Mbit/s (from 20 s), 20 s at 8 again (from 30 s).
fn capacity_drop_and_return() -> Sim {
    let estimator = Estimator::new(6 * MBIT, MIN, 10 * MBIT);
    let mut sim = Sim::new(Link::new(8 * MBIT), estimator, 2);
    sim.run_for(secs(20.0));
    sim.link.capacity_bps = MBIT;
    sim.run_for(secs(10.0));
    sim.link.capacity_bps = 8 * MBIT;
    sim.run_for(secs(20.0));
    sim
}

#[test]
fn after_a_drop_to_1_mbit_the_estimate_and_the_queue_come_down() {
    let sim = capacity_drop_and_return();
    // Before: a sawtooth between 7.3 and 8.0 Mbit/s on the 8 Mbit/s link.
    assert_eq!(
        broken(&sim, 10.0, 20.0, |s| s.estimate_bps >= 6 * MBIT),
        None
    );
    // Measured: 8 -> 5.1 -> 3.5 -> 0.85 Mbit/s at 20.6 s (0.6 s after the
    // drop), then a sawtooth between 0.85 and 1.04 Mbit/s.
    // Over seeds 1-29: 1.1 Mbit/s between 20.6 and 20.8 s.
    let low = first(&sim, 20.0, |s| s.estimate_bps <= 1_100_000).expect("never came down");
    assert!(low <= 23.0, "1.1 Mbit/s only at {low:.1} s");
    assert_eq!(
        broken(&sim, low, 30.0, |s| s.estimate_bps <= 1_100_000),
        None
    );
    assert!(sim
        .since(secs(20.0))
        .take_while(|s| s.at < secs(21.0))
        .any(|s| s.state == "decrease"));
    // Measured: the 300 ms buffer fills at once (tail drop), drains from
    // 20.6 s, is under 100 ms at 21.9 s and under 15 ms from 23 s on.
    let drained = first(&sim, 20.5, |s| s.queue_delay < Duration::from_millis(100));
    assert!(
        drained.is_some_and(|at| at <= 25.0),
        "queue under 100 ms only at {drained:?}"
    );
    assert_eq!(
        broken(&sim, 25.0, 30.0, |s| s.queue_delay
            < Duration::from_millis(100)),
        None
    );
}

#[test]
fn when_the_capacity_returns_the_estimate_climbs_back_within_15_s() {
    let sim = capacity_drop_and_return();
    // Measured from the return at 30 s: it creeps near the old 1 Mbit/s
    // capacity until 34.1 s (1.15 Mbit/s), then grows 25 %/s: 3.5 Mbit/s
    // at 39.1 s (9.1 s after the return), 7.9 Mbit/s at 42.8 s.
    // Over seeds 1-29: 3.5 Mbit/s between 39.0 and 39.4 s.
    let back = first(&sim, 30.0, |s| s.estimate_bps >= 3_500_000).expect("never climbed back");
    assert!(back <= 45.0, "3.5 Mbit/s only at {back:.1} s");
}

#[test]
fn two_per_cent_random_loss_is_not_congestion() {
    let mut sim = Sim::new(lossy(0.02), Estimator::new(MBIT, MIN, 4 * MBIT), 4);
    sim.run_for(secs(30.0));
    // Measured: 3.2 Mbit/s at 5.4 s, 4 Mbit/s from 6.4 s on; loss 2.9 %.
    reaches_and_holds(&sim, 3_200_000, 10.0, 30.0);
    let loss = sim.estimator.loss_fraction();
    assert!((0.005..0.05).contains(&loss), "loss fraction {loss}");
}

#[test]
fn five_per_cent_random_loss_is_held_not_cut() {
    let mut sim = Sim::new(lossy(0.05), Estimator::new(MBIT, MIN, 4 * MBIT), 4);
    sim.run_for(secs(30.0));
    // Measured: 2.4 Mbit/s at 4.1 s, 4 Mbit/s from 6.4 s on; loss 5.9 %.
    // Over seeds 1-29 the lowest after 10 s was 3.7 Mbit/s (one unlucky
    // stretch above 10 %, held from then on).
    reaches_and_holds(&sim, 2_400_000, 10.0, 30.0);
}

#[test]
fn twenty_per_cent_loss_cuts_the_rate() {
    let mut sim = Sim::new(lossy(0.2), Estimator::new(4 * MBIT, MIN, 4 * MBIT), 4);
    sim.run_for(secs(20.0));
    // Measured: 2 Mbit/s at 1.9 s, 0.5 Mbit/s at 10 s, 0.21 Mbit/s at 20 s; loss 23 %.
    let half = first(&sim, 0.0, |s| s.estimate_bps <= 2 * MBIT).expect("never halved");
    assert!(half <= 5.0, "halved only at {half:.1} s");
    let ten = sim.since(secs(10.0)).next().map_or(0, |s| s.estimate_bps);
    let twenty = sim.estimator.estimate_bps();
    assert!(
        twenty < ten,
        "{twenty} bit/s at 20 s, {ten} at 10 s: it stopped falling"
    );
    let loss = sim.estimator.loss_fraction();
    assert!((0.15..0.25).contains(&loss), "loss fraction {loss}");
}

#[test]
fn on_a_1_mbit_link_with_a_200_ms_buffer_it_settles_below_capacity() {
    let link = Link {
        queue: Duration::from_millis(200),
        ..Link::new(MBIT)
    };
    let mut sim = Sim::new(link, Estimator::new(MBIT, MIN, 4 * MBIT), 3);
    sim.run_for(secs(60.0));
    // Measured: a sawtooth between 0.85 and 1.04 Mbit/s from the first
    // second on, about 3.5 s a tooth, the queue never over 16 ms; over
    // seeds 1-29 the same to 10 kbit/s.
    let ok = |s: &Sample| (600_000..=1_100_000).contains(&s.estimate_bps);
    if let Some(s) = broken(&sim, 5.0, 60.0, ok) {
        panic!(
            "{:.2} Mbit/s at {:.1} s",
            mbit(s.estimate_bps),
            s.at.as_secs_f64()
        );
    }
    assert_eq!(
        broken(&sim, 5.0, 60.0, |s| s.queue_delay
            < Duration::from_millis(50)),
        None
    );
    // What arrived is what the link carries.
    let delivered = sim.estimator.delivered_bps().map_or(0.0, mbit);
    assert!(
        (0.8..=1.01).contains(&delivered),
        "delivered {delivered} Mbit/s"
    );
}

/// A steady 0.96 Mbit/s stream on a clean 20 ms path: ten 1200-byte
/// packets a report, a report every 100 ms; `(now, packets)`.
fn steady(reports: u64) -> Vec<(Duration, Vec<PacketResult>)> {
    let ms = Duration::from_millis;
    (0..reports)
        .map(|r| {
            let packets = (r * 10..r * 10 + 10)
                .map(|n| PacketResult {
                    seq: n,
                    sent: ms(10 * n),
                    received: Some(ms(10 * n + 20)),
                    size: 1200,
                })
                .collect();
            (ms(100 * r + 140), packets)
        })
        .collect()
}

#[test]
fn empty_reports_change_nothing() {
    let mut e = Estimator::new(MBIT, MIN, 4 * MBIT);
    for r in 0..100 {
        e.on_feedback(Duration::from_millis(100 * r), &[]);
    }
    assert_eq!(e.estimate_bps(), MBIT);
    assert_eq!(
        (e.loss_fraction(), e.delivered_bps(), e.state()),
        (0.0, None, "hold")
    );
}

#[test]
fn everything_lost_cuts_to_the_minimum() {
    let mut e = Estimator::new(MBIT, MIN, 4 * MBIT);
    for (now, mut packets) in steady(600) {
        packets.iter_mut().for_each(|p| p.received = None);
        e.on_feedback(now, &packets);
    }
    assert_eq!(e.estimate_bps(), MIN);
    assert!(e.loss_fraction() > 0.99, "loss {}", e.loss_fraction());
    assert_eq!(e.delivered_bps(), None);
}

#[test]
fn reordered_and_repeated_packets_count_once() {
    let (mut clean, mut messy) = (
        Estimator::new(MBIT, MIN, 4 * MBIT),
        Estimator::new(MBIT, MIN, 4 * MBIT),
    );
    let reports = steady(100);
    for (i, (now, packets)) in reports.iter().enumerate() {
        clean.on_feedback(*now, packets);
        // Backwards, each packet also reported lost, and the last report again.
        let mut shuffled: Vec<PacketResult> = packets.iter().rev().copied().collect();
        shuffled.extend(packets.iter().map(|p| PacketResult {
            received: None,
            ..*p
        }));
        messy.on_feedback(*now, &shuffled);
        if let Some((_, before)) = i.checked_sub(1).map(|j| &reports[j]) {
            messy.on_feedback(*now, before);
        }
        assert_eq!(messy.estimate_bps(), clean.estimate_bps(), "report {i}");
        assert_eq!(messy.loss_fraction(), clean.loss_fraction(), "report {i}");
        assert_eq!(messy.delivered_bps(), clean.delivered_bps(), "report {i}");
    }
    // Measured: 1 Mbit/s up to 1.45 Mbit/s (1.5 x the 0.96 delivered).
    assert!(clean.estimate_bps() > 1_400_000, "{}", clean.estimate_bps());
}

#[test]
fn arrival_before_send_is_only_a_clock_offset() {
    let day = Duration::from_secs(86_400);
    let (mut ahead, mut behind) = (
        Estimator::new(MBIT, MIN, 4 * MBIT),
        Estimator::new(MBIT, MIN, 4 * MBIT),
    );
    for (now, packets) in steady(100) {
        ahead.on_feedback(now, &packets);
        // Our clock a day ahead of the receiver's: every packet "arrives" before it was sent.
        let shifted: Vec<PacketResult> = packets
            .iter()
            .map(|p| PacketResult {
                sent: p.sent + day,
                ..*p
            })
            .collect();
        behind.on_feedback(now + day, &shifted);
        assert_eq!(behind.estimate_bps(), ahead.estimate_bps());
    }
}

#[test]
fn huge_time_jumps_neither_panic_nor_stick() {
    let mut e = Estimator::new(MBIT, MIN, 4 * MBIT);
    let shift = |packets: &[PacketResult], by: Duration| -> Vec<PacketResult> {
        let by = |t: Duration| t.checked_add(by).unwrap_or(Duration::MAX);
        let shifted = |p: &PacketResult| PacketResult {
            sent: by(p.sent),
            received: p.received.map(by),
            ..*p
        };
        packets.iter().map(shifted).collect()
    };
    let day = Duration::from_secs(86_400);
    for (i, (now, mut packets)) in steady(300).into_iter().enumerate() {
        match i {
            // Both clocks a day ahead, then at the end of time, then back.
            100 => e.on_feedback(now + day, &shift(&packets, day)),
            101 => e.on_feedback(Duration::MAX, &shift(&packets, Duration::MAX)),
            // Then a queue builds: each packet 1 ms later than the one before.
            200.. => {
                for p in &mut packets {
                    p.received = p.received.map(|t| t + Duration::from_millis(p.seq - 2000));
                }
                e.on_feedback(now, &packets);
            }
            _ => e.on_feedback(now, &packets),
        }
        assert!((MIN..=4 * MBIT).contains(&e.estimate_bps()));
        if i == 199 {
            // Back on the normal clock it follows the stream: 1.5 x 0.96 Mbit/s.
            assert!(e.estimate_bps() > 1_400_000, "{}", e.estimate_bps());
        }
    }
    // And it still sees the queue: 0.85 x what the receiver got.
    let delivered = e.delivered_bps().map_or(0.0, mbit);
    assert!(
        (0.8..0.9).contains(&delivered),
        "delivered {delivered} Mbit/s"
    );
    assert!(e.estimate_bps() < 800_000, "{}", e.estimate_bps());
}

#[test]
fn odd_sizes_and_bounds_stay_in_range() {
    // min above max: max wins nothing, min holds.
    assert_eq!(
        Estimator::new(5 * MBIT, 2 * MBIT, MBIT).estimate_bps(),
        2 * MBIT
    );
    let mut e = Estimator::new(MBIT, MIN, 4 * MBIT);
    for (i, (now, mut packets)) in steady(50).into_iter().enumerate() {
        packets
            .iter_mut()
            .for_each(|p| p.size = if i % 2 == 0 { usize::MAX } else { 0 });
        e.on_feedback(now, &packets);
        assert!((MIN..=4 * MBIT).contains(&e.estimate_bps()));
    }
}

#[test]
fn a_restarted_sequence_is_not_taken_for_duplicates() {
    let mut e = Estimator::new(MBIT, MIN, 4 * MBIT);
    for (now, packets) in steady(100) {
        let late: Vec<PacketResult> = packets
            .iter()
            .map(|p| PacketResult {
                seq: p.seq + 1_000_000,
                ..*p
            })
            .collect();
        e.on_feedback(now, &late);
    }
    // From 0 again (a new unwrapper), and all lost: that must count.
    for (now, mut packets) in steady(100) {
        packets.iter_mut().for_each(|p| p.received = None);
        e.on_feedback(now + Duration::from_secs(10), &packets);
    }
    assert!(e.loss_fraction() > 0.99, "loss {}", e.loss_fraction());
}

#[test]
fn sequence_numbers_unwrap_across_zero() {
    let mut u = SeqUnwrapper::default();
    let first = u.extend(65_534);
    let got: Vec<u64> = [65_535, 0, 1, 65_535, 2]
        .iter()
        .map(|s| u.extend(*s) - first)
        .collect();
    // The second 65535 is a late report of the first one, not a lap ahead.
    assert_eq!(got, [1, 2, 3, 1, 4]);
    // A packet from before the very first still fits below it.
    let mut u = SeqUnwrapper::default();
    let (a, b) = (u.extend(3), u.extend(65_533));
    assert_eq!(a - b, 6);
    // Half a lap ahead is ahead; many laps add up.
    let mut u = SeqUnwrapper::default();
    let start = u.extend(0);
    let mut last = start;
    for lap in 0..10u64 {
        for s in [16_000u16, 32_000, 48_000, 0] {
            last = u.extend(s);
        }
        assert_eq!(last - start, (lap + 1) << 16);
    }
}
