//! The IPv4 interface: smoltcp over any Ethernet [`Device`], addressed by DHCP, a
//! static address, or DHCP falling back to the static address.
//!
//! The fields are public so an application can hand the interface, the socket set
//! and the device to a driver of its own (as the mq client's smoltcp driver wants).

use core::fmt;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::phy::Device;
use smoltcp::socket::dhcpv4;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address, Ipv4Cidr};

use crate::config::{Addressing, StaticIp};

/// Where the interface's address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Dhcp,
    Static,
    /// The static address, after DHCP gave no lease in time.
    Fallback,
}

/// A change of the interface's address, for the application to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressEvent {
    Configured {
        cidr: Ipv4Cidr,
        gateway: Option<Ipv4Address>,
        source: Source,
    },
    /// The DHCP lease was lost; no address until a new one comes.
    Deconfigured,
}

impl fmt::Display for AddressEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressEvent::Configured {
                cidr,
                gateway,
                source,
            } => {
                let how = match source {
                    Source::Dhcp => "by DHCP",
                    Source::Static => "set statically",
                    Source::Fallback => "set statically after no DHCP lease",
                };
                match gateway {
                    Some(gateway) => write!(f, "address {cidr} gateway {gateway} {how}"),
                    None => write!(f, "address {cidr} {how}"),
                }
            }
            AddressEvent::Deconfigured => f.write_str("address lost (DHCP)"),
        }
    }
}

/// What the DHCP socket reported.
enum Lease {
    Got(Ipv4Cidr, Option<Ipv4Address>),
    Lost,
}

/// The interface, its sockets and its device.
pub struct Net<'a, D: Device> {
    pub device: D,
    pub iface: Interface,
    pub sockets: SocketSet<'a>,
    dhcp: Option<SocketHandle>,
    /// The static address DHCP falls back to, and when.
    fallback: Option<(StaticIp, Instant)>,
    address: Option<Ipv4Cidr>,
    pending: Option<AddressEvent>,
}

impl<'a, D: Device> Net<'a, D> {
    /// An interface on `device` with hardware address `mac`; `storage` bounds the
    /// number of sockets (DHCP takes one). `dhcp_ms` is the wait before
    /// [`Addressing::DhcpThenStatic`] gives up on DHCP. `seed` should differ
    /// between boots (TCP sequence numbers and ports derive from it).
    pub fn new(
        mut device: D,
        mac: [u8; 6],
        addressing: Addressing,
        dhcp_ms: u64,
        seed: u64,
        storage: &'a mut [SocketStorage<'a>],
        now: Instant,
    ) -> Net<'a, D> {
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        config.random_seed = seed;
        let iface = Interface::new(config, &mut device, now);
        let mut net = Net {
            device,
            iface,
            sockets: SocketSet::new(storage),
            dhcp: None,
            fallback: None,
            address: None,
            pending: None,
        };
        match addressing {
            Addressing::Static(ip) => net.apply_static(ip, Source::Static),
            Addressing::Dhcp => net.dhcp = Some(net.sockets.add(dhcpv4::Socket::new())),
            Addressing::DhcpThenStatic(ip) => {
                net.dhcp = Some(net.sockets.add(dhcpv4::Socket::new()));
                let wait = Duration::from_millis(dhcp_ms);
                net.fallback = Some((ip, now + wait));
            }
        }
        net
    }

    /// The interface's address, once it has one.
    pub fn address(&self) -> Option<Ipv4Cidr> {
        self.address
    }

    /// Moves frames between the device and the sockets, and follows DHCP; returns
    /// the address change this brought, if any.
    pub fn poll(&mut self, now: Instant) -> Option<AddressEvent> {
        self.iface.poll(now, &mut self.device, &mut self.sockets);
        let lease = self.dhcp.and_then(|handle| {
            match self.sockets.get_mut::<dhcpv4::Socket>(handle).poll()? {
                dhcpv4::Event::Configured(lease) => Some(Lease::Got(lease.address, lease.router)),
                dhcpv4::Event::Deconfigured => Some(Lease::Lost),
            }
        });
        match lease {
            Some(Lease::Got(cidr, router)) => {
                self.fallback = None;
                self.set_address(cidr, router, Source::Dhcp);
            }
            // smoltcp also says `Deconfigured` once at the start, before any lease.
            Some(Lease::Lost) if self.address.is_some() => {
                self.clear_address();
                self.pending = Some(AddressEvent::Deconfigured);
            }
            Some(Lease::Lost) | None => {}
        }
        if let Some((ip, at)) = self.fallback
            && now >= at
            && self.address.is_none()
        {
            if let Some(handle) = self.dhcp.take() {
                self.sockets.remove(handle);
            }
            self.fallback = None;
            self.apply_static(ip, Source::Fallback);
        }
        self.pending.take()
    }

    /// How long until [`Net::poll`] has work again without new input (`None`: not
    /// until a frame arrives).
    pub fn poll_delay(&mut self, now: Instant) -> Option<Duration> {
        let stack = self.iface.poll_delay(now, &self.sockets);
        let fallback = self
            .fallback
            .map(|(_, at)| if at > now { at - now } else { Duration::ZERO });
        match (stack, fallback) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn apply_static(&mut self, ip: StaticIp, source: Source) {
        self.set_address(ip.cidr, ip.gateway, source);
    }

    fn set_address(&mut self, cidr: Ipv4Cidr, gateway: Option<Ipv4Address>, source: Source) {
        self.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            // The list has room for one address: `clear` made it.
            let _ = addrs.push(IpCidr::Ipv4(cidr));
        });
        let routes = self.iface.routes_mut();
        routes.remove_default_ipv4_route();
        if let Some(gateway) = gateway {
            // One route in an empty table always fits.
            let _ = routes.add_default_ipv4_route(gateway);
        }
        self.address = Some(cidr);
        self.pending = Some(AddressEvent::Configured {
            cidr,
            gateway,
            source,
        });
    }

    fn clear_address(&mut self) {
        self.iface.update_ip_addrs(|addrs| addrs.clear());
        self.iface.routes_mut().remove_default_ipv4_route();
        self.address = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StaticIp;
    use smoltcp::phy::{self, DeviceCapabilities, Medium};

    /// A link where nothing ever answers: frames sent are counted and dropped.
    struct Silent {
        sent: usize,
    }

    struct Drop<'a>(&'a mut usize);

    impl phy::TxToken for Drop<'_> {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
            *self.0 += 1;
            f(&mut std::vec![0; len])
        }
    }

    struct Nothing;

    impl phy::RxToken for Nothing {
        fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
            f(&[])
        }
    }

    impl Device for Silent {
        type RxToken<'a> = Nothing;
        type TxToken<'a> = Drop<'a>;

        fn receive(&mut self, _: Instant) -> Option<(Nothing, Drop<'_>)> {
            None
        }

        fn transmit(&mut self, _: Instant) -> Option<Drop<'_>> {
            Some(Drop(&mut self.sent))
        }

        fn capabilities(&self) -> DeviceCapabilities {
            let mut caps = DeviceCapabilities::default();
            caps.medium = Medium::Ethernet;
            caps.max_transmission_unit = 1514;
            caps
        }
    }

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];

    fn static_ip() -> StaticIp {
        StaticIp {
            cidr: Ipv4Cidr::new(Ipv4Address::new(10, 0, 2, 15), 24),
            gateway: Some(Ipv4Address::new(10, 0, 2, 2)),
        }
    }

    fn at(ms: i64) -> Instant {
        Instant::from_millis(ms)
    }

    fn configured(source: Source) -> Option<AddressEvent> {
        Some(AddressEvent::Configured {
            cidr: static_ip().cidr,
            gateway: static_ip().gateway,
            source,
        })
    }

    fn silent_net(addressing: Addressing, dhcp_ms: u64) -> Net<'static, Silent> {
        let storage = std::boxed::Box::leak(std::boxed::Box::new([SocketStorage::EMPTY; 2]));
        let device = Silent { sent: 0 };
        Net::new(device, MAC, addressing, dhcp_ms, 1, storage, at(0))
    }

    #[test]
    fn address_events_read_as_text() {
        let text = |event: Option<AddressEvent>| std::format!("{}", event.unwrap());
        assert_eq!(
            text(configured(Source::Dhcp)),
            "address 10.0.2.15/24 gateway 10.0.2.2 by DHCP"
        );
        assert_eq!(
            text(Some(AddressEvent::Configured {
                cidr: static_ip().cidr,
                gateway: None,
                source: Source::Fallback
            })),
            "address 10.0.2.15/24 set statically after no DHCP lease"
        );
        assert_eq!(
            text(Some(AddressEvent::Deconfigured)),
            "address lost (DHCP)"
        );
    }

    #[test]
    fn static_address_is_there_at_once() {
        let mut net = silent_net(Addressing::Static(static_ip()), 0);
        assert_eq!(net.address(), Some(static_ip().cidr));
        assert_eq!(net.poll(at(0)), configured(Source::Static));
        assert_eq!(net.poll(at(1)), None, "reported once");
        assert_eq!(net.device.sent, 0, "no DHCP on a static address");
    }

    #[test]
    fn dhcp_falls_back_to_the_static_address_after_the_wait() {
        let mut net = silent_net(Addressing::DhcpThenStatic(static_ip()), 500);
        assert_eq!(net.poll(at(0)), None);
        assert!(net.device.sent > 0, "a DHCP discover went out");
        assert_eq!(net.address(), None);
        let delay = net.poll_delay(at(100)).expect("a deadline is pending");
        assert!(delay <= Duration::from_millis(400), "{delay}");
        assert_eq!(net.poll(at(499)), None);
        assert_eq!(net.poll(at(500)), configured(Source::Fallback));
        assert_eq!(net.address(), Some(static_ip().cidr));
        let sent = net.device.sent;
        net.poll(at(60_000));
        assert_eq!(net.device.sent, sent, "DHCP stopped");
    }

    #[test]
    fn dhcp_alone_waits_for_a_lease() {
        let mut net = silent_net(Addressing::Dhcp, 500);
        for ms in (0..30_000).step_by(250) {
            assert_eq!(net.poll(at(ms)), None);
        }
        assert_eq!(net.address(), None);
    }
}
