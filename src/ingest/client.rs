//! Who is asking: the client's address (believing `X-Forwarded-For` only from trusted proxies)
//! and its user agent, bounded before anything is stored.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Request};
use ipnet::IpNet;

/// Longest user agent kept: real ones are a few hundred characters.
pub const MAX_USER_AGENT: usize = 512;

/// Resolves client addresses.
#[derive(Debug, Clone, Default)]
pub struct Clients {
    proxies: Vec<IpNet>,
}

impl Clients {
    pub fn new(proxies: Vec<IpNet>) -> Clients {
        Clients { proxies }
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.proxies.iter().any(|p| p.contains(&ip))
    }

    /// The client's address. From a trusted proxy, `X-Forwarded-For` is read from the right,
    /// past every trusted hop, to the first address a trusted proxy saw connect; an entry that
    /// is not an address ends the walk there. From anyone else the header is ignored.
    pub fn address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusted(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                Some(ip) => {
                    client = ip;
                    if !self.trusted(ip) {
                        break;
                    }
                }
                None => break,
            }
        }
        client
    }

    /// The client address of a request (the peer comes from the server's `ConnectInfo`).
    pub fn of<B>(&self, request: &Request<B>) -> Option<IpAddr> {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()?
            .0
            .ip();
        Some(self.address(peer, request.headers()))
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:80`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// The user agent, cut to [`MAX_USER_AGENT`] characters.
pub fn user_agent(headers: &HeaderMap) -> Option<String> {
    let agent = String::from_utf8_lossy(headers.get(header::USER_AGENT)?.as_bytes());
    Some(agent.chars().take(MAX_USER_AGENT).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let clients = Clients::new(vec![
            "10.0.0.0/8".parse().unwrap(),
            "2001:db8::1/128".parse().unwrap(),
        ]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let cases: &[(&str, &[&str], &str)] = &[
            // Anyone else: the header is ignored.
            ("198.51.100.7", &["1.2.3.4"], "198.51.100.7"),
            // A trusted proxy: the address it saw connect.
            ("10.1.1.1", &["203.0.113.9"], "203.0.113.9"),
            // A client's own forged entries left of the real one are not believed.
            ("10.1.1.1", &["6.6.6.6, 203.0.113.9"], "203.0.113.9"),
            // Two trusted hops, in one header or several.
            ("10.1.1.1", &["203.0.113.9, 10.2.2.2"], "203.0.113.9"),
            ("10.1.1.1", &["203.0.113.9", "10.2.2.2"], "203.0.113.9"),
            // Ports and IPv6.
            ("10.1.1.1", &["203.0.113.9:4711"], "203.0.113.9"),
            ("2001:db8::1", &["[2001:db8::7]:443"], "2001:db8::7"),
            // Garbage ends the walk at the last address known.
            ("10.1.1.1", &["<script>"], "10.1.1.1"),
            ("10.1.1.1", &[], "10.1.1.1"),
        ];
        for (peer, xff, expected) in cases {
            assert_eq!(
                clients.address(ip(peer), &headers(xff)),
                ip(expected),
                "{peer} {xff:?}"
            );
        }
    }

    #[test]
    fn user_agents_are_cut() {
        let mut h = HeaderMap::new();
        h.insert(header::USER_AGENT, "é".repeat(300_000).parse().unwrap());
        assert_eq!(user_agent(&h).unwrap().chars().count(), MAX_USER_AGENT);
    }
}
