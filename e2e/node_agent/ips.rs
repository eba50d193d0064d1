//! Pod addresses. Every pod gets its own address x from 2 on the
//! loopback interface (`.1` is the node), so two pods can both listen on
//! the same port, as they could in a real cluster: 10.244.0.x inside the
//! harness's private network namespace, else 127.0.0.x.
//!
//! The addresses are shared by the whole test process: tests run in
//! parallel threads, each with its own cluster and agent, but all on the
//! same loopback interface. So the set of used addresses is global, and
//! each pool remembers its own and returns them when dropped.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Mutex;

static IN_USE: Mutex<BTreeSet<u8>> = Mutex::new(BTreeSet::new());

/// Overrides the first three octets (`10.244.0`). Only for runs inside a
/// private network namespace whose `lo` carries those addresses: the
/// apiserver refuses loopback addresses in EndpointSlices.
const NET_ENV: &str = "HEARTH_E2E_POD_NET";

pub struct IpPool {
    /// The process-wide set (a private one in unit tests).
    used: &'static Mutex<BTreeSet<u8>>,
    mine: BTreeSet<u8>,
    net: [u8; 3],
}

impl Default for IpPool {
    fn default() -> IpPool {
        IpPool { used: &IN_USE, mine: BTreeSet::new(), net: net_from_env().unwrap_or([127, 0, 0]) }
    }
}

fn net_from_env() -> Option<[u8; 3]> {
    let v = std::env::var(NET_ENV).ok()?;
    let octets: Vec<u8> = v.split('.').map(|o| o.parse().ok()).collect::<Option<_>>()?;
    octets.try_into().ok()
}

impl IpPool {
    fn used(&self) -> std::sync::MutexGuard<'static, BTreeSet<u8>> {
        self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The lowest address free in this process, or `None` once
    /// 127.0.0.2–254 are all taken.
    pub fn take(&mut self) -> Option<Ipv4Addr> {
        let mut used = self.used();
        let x = (2..=254u8).find(|x| !used.contains(x))?;
        used.insert(x);
        drop(used);
        self.mine.insert(x);
        let [a, b, c] = self.net;
        Some(Ipv4Addr::new(a, b, c, x))
    }

    /// Returns `ip` if this pool holds it; someone else's stays taken.
    pub fn free(&mut self, ip: Ipv4Addr) {
        let x = ip.octets()[3];
        if self.mine.remove(&x) {
            self.used().remove(&x);
        }
    }
}

impl Drop for IpPool {
    fn drop(&mut self) {
        let mut used = self.used();
        for x in &self.mine {
            used.remove(x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(set: &'static Mutex<BTreeSet<u8>>) -> IpPool {
        IpPool { used: set, mine: BTreeSet::new(), net: [127, 0, 0] }
    }

    #[test]
    fn pools_share_no_address_and_return_theirs() {
        let set: &'static Mutex<BTreeSet<u8>> = Box::leak(Box::default());
        let ip = |x| Some(Ipv4Addr::new(127, 0, 0, x));
        let mut a = pool(set);
        let mut b = pool(set);
        assert_eq!((a.take(), b.take(), a.take()), (ip(2), ip(3), ip(4)));
        b.free(Ipv4Addr::new(127, 0, 0, 2)); // a's, not b's: stays taken
        assert_eq!(b.take(), ip(5));
        a.free(Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(b.take(), ip(2), "freed address is reused");
        drop(b); // returns 2, 3 and 5
        assert_eq!((a.take(), a.take(), a.take(), a.take()), (ip(2), ip(3), ip(5), ip(6)));
        let rest = (0..300).filter_map(|_| a.take()).count();
        assert_eq!(rest, 254 - 6, "127.0.0.7..=254, then none");
    }
}
