//! Link facts: what the kernel says about a network interface (its MAC address, MTU and rx
//! queue count), read from sysfs (`/sys/class/net/IFNAME/...`).
//!
//! This is the one place that reads them: an AF_XDP port asks for the rx queue count when it
//! opens, the switch asks for the MAC and MTU of the uplink it runs the underlay on. Each
//! fact can be read alone ([`mac`], [`mtu`], [`rx_queues`]) or all at once
//! ([`LinkFacts::read`]); a failure is a [`LinkError`] naming the interface, the fact and
//! the sysfs path that could not be read. These are control-plane reads, never made per
//! packet.

use std::path::PathBuf;

use flowtable::MacAddr;

/// What the kernel says about one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkFacts {
    /// Its MAC address (`address`).
    pub mac: MacAddr,
    /// Its MTU (`mtu`): the largest IP packet it carries.
    pub mtu: u32,
    /// How many rx queues it has (the `queues/rx-*` entries), at least 1.
    pub rx_queues: u32,
}

impl LinkFacts {
    /// Reads every fact of `interface`; the first one that cannot be read is the error.
    pub fn read(interface: &str) -> Result<LinkFacts, LinkError> {
        Ok(LinkFacts {
            mac: mac(interface)?,
            mtu: mtu(interface)?,
            rx_queues: rx_queues(interface)?,
        })
    }
}

/// Which fact of an interface a [`LinkError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkFact {
    /// The MAC address.
    Mac,
    /// The MTU.
    Mtu,
    /// The rx queue count.
    RxQueues,
}

impl LinkFact {
    /// The fact as an error message names it.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkFact::Mac => "MAC address",
            LinkFact::Mtu => "MTU",
            LinkFact::RxQueues => "rx queue count",
        }
    }

    /// Its entry under `/sys/class/net/IFNAME/`.
    fn entry(self) -> &'static str {
        match self {
            LinkFact::Mac => "address",
            LinkFact::Mtu => "mtu",
            LinkFact::RxQueues => "queues",
        }
    }
}

/// A fact of an interface that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("interface {interface:?}: cannot read its {} from {}: {reason}", fact.as_str(), path.display())]
pub struct LinkError {
    /// The interface.
    pub interface: String,
    /// The fact.
    pub fact: LinkFact,
    /// The sysfs path read.
    pub path: PathBuf,
    /// Why it could not be read: the OS error, or what is wrong with what sysfs said.
    pub reason: String,
}

/// The sysfs path of `fact` for `interface`.
fn path_of(interface: &str, fact: LinkFact) -> PathBuf {
    PathBuf::from(format!("/sys/class/net/{interface}/{}", fact.entry()))
}

/// `interface`'s error reading `fact`, for `reason`.
fn failed(interface: &str, fact: LinkFact, reason: impl ToString) -> LinkError {
    LinkError {
        interface: interface.to_string(),
        fact,
        path: path_of(interface, fact),
        reason: reason.to_string(),
    }
}

/// Reads `fact`'s sysfs entry (a one-line file) and parses its trimmed text with `parse`,
/// whose error says what is wrong with it.
fn read_entry<T>(
    interface: &str,
    fact: LinkFact,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, LinkError> {
    let text = std::fs::read_to_string(path_of(interface, fact))
        .map_err(|e| failed(interface, fact, e))?;
    parse(text.trim()).map_err(|reason| failed(interface, fact, reason))
}

/// `interface`'s MAC address.
pub fn mac(interface: &str) -> Result<MacAddr, LinkError> {
    read_entry(interface, LinkFact::Mac, |t| {
        t.parse().map_err(|_| format!("{t:?} is not a MAC address"))
    })
}

/// `interface`'s MTU.
pub fn mtu(interface: &str) -> Result<u32, LinkError> {
    read_entry(interface, LinkFact::Mtu, |t| {
        t.parse().map_err(|e| format!("{t:?}: {e}"))
    })
}

/// How many rx queues `interface` has: its `queues/rx-*` entries. None listed is an error.
pub fn rx_queues(interface: &str) -> Result<u32, LinkError> {
    let fact = LinkFact::RxQueues;
    let dir =
        std::fs::read_dir(path_of(interface, fact)).map_err(|e| failed(interface, fact, e))?;
    let n = dir
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .count();
    u32::try_from(n)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| failed(interface, fact, format!("it lists {n} rx queues")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loopback exists in every network namespace, with a MAC of zeros, an MTU and one rx
    /// queue at least.
    #[test]
    fn loopback_facts_are_read() {
        let lo = LinkFacts::read("lo").unwrap();
        assert_eq!(lo.mac, MacAddr([0; 6]));
        assert!(lo.mtu >= 1500, "{lo:?}");
        assert!(lo.rx_queues >= 1, "{lo:?}");
        assert_eq!(mtu("lo").unwrap(), lo.mtu);
        assert_eq!(rx_queues("lo").unwrap(), lo.rx_queues);
    }

    #[test]
    fn a_missing_interface_names_what_could_not_be_read() {
        let e = LinkFacts::read("vsw-nosuch9").unwrap_err();
        assert_eq!(e.fact, LinkFact::Mac);
        let text = e.to_string();
        assert!(
            text.contains("\"vsw-nosuch9\"")
                && text.contains("MAC address")
                && text.contains("/sys/class/net/vsw-nosuch9/address"),
            "{text}"
        );
        let e = mtu("vsw-nosuch9").unwrap_err();
        assert!(e.to_string().contains("its MTU from"), "{e}");
        let e = rx_queues("vsw-nosuch9").unwrap_err();
        assert!(
            e.to_string().contains("/sys/class/net/vsw-nosuch9/queues"),
            "{e}"
        );
    }
}
