//! Connection accounting: how many sockets each address, and everyone
//! together, may hold open. Two pools use it: plain HTTP connections (page
//! loads, `/metrics` scrapes, a socket that has not sent a request yet) and
//! WebSocket sessions. An upgrade moves a connection from the first pool to
//! the second.
//!
//! Addresses are counted per host: an IPv4 address, or an IPv6 /64 (one
//! machine commonly holds many addresses of its /64, and so does anyone
//! wanting to dodge a per-address limit). The tally is a plain state machine
//! ([`Tally`]); [`Pool`] shares it between tasks and hands out [`Slot`]s that
//! give their place back when dropped.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// How many connections of one kind may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// From one address (an IPv4 address or an IPv6 /64).
    pub per_address: usize,
    /// From everyone together.
    pub total: usize,
}

impl Default for Limits {
    /// 32 per address: a whole room (`--max-clients`, 32) behind one NAT
    /// or reverse proxy, one tab each. 256 in total: eight such
    /// households. A home desktop serves a handful.
    fn default() -> Self {
        Limits {
            per_address: DEFAULT_PER_ADDRESS,
            total: DEFAULT_TOTAL,
        }
    }
}

pub const DEFAULT_PER_ADDRESS: usize = 32;
pub const DEFAULT_TOTAL: usize = 256;

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    PerAddress,
    Total,
}

/// The address a connection counts against: IPv4 (also when mapped into
/// IPv6) as it is, IPv6 cut to its /64.
pub fn host_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Open connections per address and in total, against [`Limits`].
#[derive(Debug)]
pub struct Tally {
    limits: Limits,
    by_address: HashMap<IpAddr, usize>,
    total: usize,
}

impl Tally {
    pub fn new(limits: Limits) -> Self {
        Tally {
            limits,
            by_address: HashMap::new(),
            total: 0,
        }
    }

    /// Takes a place for a connection from `ip`, or says why not. The
    /// total is checked first: when everything is full, that is the reason.
    pub fn admit(&mut self, ip: IpAddr) -> Result<(), Refusal> {
        let key = host_key(ip);
        if self.total >= self.limits.total {
            return Err(Refusal::Total);
        }
        let here = self.by_address.entry(key).or_default();
        if *here >= self.limits.per_address {
            return Err(Refusal::PerAddress);
        }
        *here += 1;
        self.total += 1;
        Ok(())
    }

    /// Gives back a place taken by [`Tally::admit`] for `ip`.
    pub fn release(&mut self, ip: IpAddr) {
        let key = host_key(ip);
        if let Some(n) = self.by_address.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_address.remove(&key);
            }
            self.total = self.total.saturating_sub(1);
        }
    }

    pub fn open(&self) -> usize {
        self.total
    }

    /// Addresses with at least one connection (the map never holds more).
    pub fn addresses(&self) -> usize {
        self.by_address.len()
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }
}

/// A [`Tally`] shared between the tasks that open and close connections.
#[derive(Debug, Clone)]
pub struct Pool(Arc<Mutex<Tally>>);

impl Pool {
    pub fn new(limits: Limits) -> Self {
        Pool(Arc::new(Mutex::new(Tally::new(limits))))
    }

    /// A slot for a connection from `ip`, held until dropped.
    pub fn take(&self, ip: IpAddr) -> Result<Slot, Refusal> {
        let mut tally = self.0.lock().map_err(|_| Refusal::Total)?;
        tally.admit(ip)?;
        Ok(Slot {
            pool: self.0.clone(),
            ip,
        })
    }

    /// Connections open right now.
    pub fn open(&self) -> usize {
        self.0.lock().map(|t| t.open()).unwrap_or(0)
    }

    pub fn limits(&self) -> Limits {
        self.0.lock().map(|t| t.limits()).unwrap_or_default()
    }
}

/// One admitted connection; dropping it frees the place.
#[derive(Debug)]
pub struct Slot {
    pool: Arc<Mutex<Tally>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut tally) = self.pool.lock() {
            tally.release(self.ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn per_address_then_total() {
        let mut t = Tally::new(Limits {
            per_address: 2,
            total: 3,
        });
        assert_eq!(t.admit(v4(1)), Ok(()));
        assert_eq!(t.admit(v4(1)), Ok(()));
        assert_eq!(t.admit(v4(1)), Err(Refusal::PerAddress));
        assert_eq!(t.admit(v4(2)), Ok(()));
        // Full: the total is the reason, whoever asks.
        assert_eq!(t.admit(v4(3)), Err(Refusal::Total));
        assert_eq!(t.admit(v4(1)), Err(Refusal::Total));
        assert_eq!(t.open(), 3);
        t.release(v4(1));
        assert_eq!(t.admit(v4(3)), Ok(()));
        assert_eq!(t.admit(v4(1)), Err(Refusal::Total));
    }

    #[test]
    fn releasing_forgets_empty_addresses_and_ignores_strangers() {
        let mut t = Tally::new(Limits {
            per_address: 4,
            total: 100,
        });
        for i in 0..50 {
            t.admit(v4(i)).unwrap();
        }
        assert_eq!(t.addresses(), 50);
        for i in 0..50 {
            t.release(v4(i));
        }
        assert_eq!((t.open(), t.addresses()), (0, 0));
        // A release that was never admitted changes nothing.
        t.release(v4(9));
        assert_eq!(t.open(), 0);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let mut t = Tally::new(Limits {
            per_address: 2,
            total: 10,
        });
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        t.admit(a).unwrap();
        t.admit(b).unwrap();
        assert_eq!(t.admit(a), Err(Refusal::PerAddress), "same /64");
        assert_eq!(t.admit(other), Ok(()), "another /64");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        t.admit(mapped).unwrap();
        t.admit(v4(7)).unwrap();
        assert_eq!(t.admit(v4(7)), Err(Refusal::PerAddress));
    }

    #[test]
    fn slots_give_their_place_back() {
        let pool = Pool::new(Limits {
            per_address: 1,
            total: 1,
        });
        let slot = pool.take(v4(1)).unwrap();
        assert_eq!(pool.take(v4(2)).err(), Some(Refusal::Total));
        drop(slot);
        assert_eq!(pool.open(), 0);
        let _again = pool.take(v4(2)).unwrap();
        assert_eq!(pool.open(), 1);
    }
}
