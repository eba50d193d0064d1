//! Pod addresses. Every pod gets its own loopback address 127.0.0.x
//! (x from 2; 127.0.0.1 is the node), so two pods can both listen on
//! the same port, as they could in a real cluster.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

#[derive(Default)]
pub struct IpPool {
    used: BTreeSet<u8>,
}

impl IpPool {
    /// The lowest free address, or `None` once 127.0.0.2–254 are all taken.
    pub fn take(&mut self) -> Option<Ipv4Addr> {
        let x = (2..=254u8).find(|x| !self.used.contains(x))?;
        self.used.insert(x);
        Some(Ipv4Addr::new(127, 0, 0, x))
    }

    pub fn free(&mut self, ip: Ipv4Addr) {
        self.used.remove(&ip.octets()[3]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_reused_after_free() {
        let mut p = IpPool::default();
        let a = p.take();
        let b = p.take();
        assert_eq!(a, Some(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(b, Some(Ipv4Addr::new(127, 0, 0, 3)));
        p.free(Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(p.take(), Some(Ipv4Addr::new(127, 0, 0, 2)));
        let n = (0..300).filter_map(|_| p.take()).count();
        assert_eq!(n, 251, "127.0.0.4..=254 remain");
    }
}
