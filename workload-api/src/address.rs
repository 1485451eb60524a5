//! Workload API endpoint addresses (`SPIFFE_ENDPOINT_SOCKET`), parsed exactly
//! as the SPIFFE Workload Endpoint specification allows (rules E-07 to
//! E-10): `unix:` with an absolute path and nothing else, or `tcp:` with an
//! IP literal and a port and nothing else.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

/// The environment variable that names the Workload API endpoint (E-07).
pub const SPIFFE_ENDPOINT_SOCKET: &str = "SPIFFE_ENDPOINT_SOCKET";

/// Where a Workload API server listens: a Unix domain socket (preferred) or
/// a TCP address.
///
/// ```
/// use spiffe_workload_api::EndpointAddress;
///
/// let unix: EndpointAddress = "unix:///run/spire/agent.sock".parse()?;
/// assert_eq!(unix, EndpointAddress::Unix("/run/spire/agent.sock".into()));
///
/// let tcp: EndpointAddress = "tcp://127.0.0.1:8000".parse()?;
/// assert_eq!(tcp.to_string(), "tcp://127.0.0.1:8000");
///
/// // The specification's own counter-example: no path after a TCP address.
/// assert!("tcp://127.0.0.1:8000/foo".parse::<EndpointAddress>().is_err());
/// # Ok::<(), spiffe_workload_api::AddressError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndpointAddress {
    /// A Unix domain socket at this absolute path.
    Unix(PathBuf),
    /// A TCP endpoint at this IP address and port.
    Tcp(SocketAddr),
}

/// Why an endpoint address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// No address was given and `SPIFFE_ENDPOINT_SOCKET` is not set (E-07).
    #[error("no Workload API address configured and {SPIFFE_ENDPOINT_SOCKET} is not set")]
    NotConfigured,
    /// `SPIFFE_ENDPOINT_SOCKET` is set but is not valid Unicode.
    #[error("{SPIFFE_ENDPOINT_SOCKET} is not valid Unicode")]
    NotUnicode,
    /// The scheme is missing or is neither `unix` nor `tcp` (E-08).
    #[error("address `{address}` must have a `unix` or `tcp` scheme")]
    Scheme {
        /// The address given.
        address: String,
    },
    /// The URI is opaque (`unix:relative/path`, `tcp:1.2.3.4:5`).
    #[error("address `{address}` must not be opaque")]
    Opaque {
        /// The address given.
        address: String,
    },
    /// The URI carries a query (`?...`).
    #[error("address `{address}` must not include a query")]
    Query {
        /// The address given.
        address: String,
    },
    /// The URI carries a fragment (`#...`).
    #[error("address `{address}` must not include a fragment")]
    Fragment {
        /// The address given.
        address: String,
    },
    /// The URI carries user information (`user@`).
    #[error("address `{address}` must not include user info")]
    UserInfo {
        /// The address given.
        address: String,
    },
    /// A `unix:` address names an authority (`unix://host/path`); only
    /// scheme and path may appear (E-09).
    #[error("unix address `{address}` must not include an authority (use unix:///absolute/path)")]
    UnixAuthority {
        /// The address given.
        address: String,
    },
    /// A `unix:` address without a path, or with a bad one (a NUL byte or a
    /// malformed percent-escape).
    #[error("unix address `{address}` must include an absolute socket path")]
    UnixPath {
        /// The address given.
        address: String,
    },
    /// A `tcp:` address whose host is not an IP literal (E-10).
    #[error("tcp address `{address}` must have an IP address as its host")]
    TcpHost {
        /// The address given.
        address: String,
    },
    /// A `tcp:` address without a port, or with one that is not 0-65535.
    #[error("tcp address `{address}` must include a port from 0 to 65535")]
    TcpPort {
        /// The address given.
        address: String,
    },
    /// A `tcp:` address with a path (E-10).
    #[error("tcp address `{address}` must not include a path")]
    TcpPath {
        /// The address given.
        address: String,
    },
}

impl EndpointAddress {
    /// Parses a Workload API endpoint URI.
    ///
    /// # Errors
    ///
    /// An [`AddressError`] naming the part of the URI the specification
    /// forbids.
    pub fn parse(address: &str) -> Result<Self, AddressError> {
        let owned = || address.to_owned();
        let Some((scheme, rest)) = address.split_once(':') else {
            return Err(AddressError::Scheme { address: owned() });
        };
        // RFC 3986 schemes are case-insensitive.
        let is_unix = scheme.eq_ignore_ascii_case("unix");
        if !is_unix && !scheme.eq_ignore_ascii_case("tcp") {
            return Err(AddressError::Scheme { address: owned() });
        }
        let (rest, fragment) = split_off(rest, '#');
        if fragment.is_some() {
            return Err(AddressError::Fragment { address: owned() });
        }
        let (rest, query) = split_off(rest, '?');
        if query.is_some() {
            return Err(AddressError::Query { address: owned() });
        }
        let (authority, path) = match rest.strip_prefix("//") {
            Some(after) => match after.find('/') {
                Some(slash) => (Some(&after[..slash]), &after[slash..]),
                None => (Some(after), ""),
            },
            None => (None, rest),
        };
        if authority.is_some_and(|a| a.contains('@')) {
            return Err(AddressError::UserInfo { address: owned() });
        }
        if is_unix {
            if authority.is_some_and(|a| !a.is_empty()) {
                return Err(AddressError::UnixAuthority { address: owned() });
            }
            if path.is_empty() {
                return Err(AddressError::UnixPath { address: owned() });
            }
            if !path.starts_with('/') {
                return Err(AddressError::Opaque { address: owned() });
            }
            let decoded =
                percent_decode(path).ok_or_else(|| AddressError::UnixPath { address: owned() })?;
            return Ok(EndpointAddress::Unix(PathBuf::from(decoded)));
        }
        let Some(authority) = authority else {
            return Err(AddressError::Opaque { address: owned() });
        };
        if !path.is_empty() {
            return Err(AddressError::TcpPath { address: owned() });
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(bracketed) => {
                let Some((v6, after)) = bracketed.split_once(']') else {
                    return Err(AddressError::TcpHost { address: owned() });
                };
                let Some(port) = after.strip_prefix(':') else {
                    return Err(AddressError::TcpPort { address: owned() });
                };
                let ip = v6
                    .parse::<std::net::Ipv6Addr>()
                    .map_err(|_| AddressError::TcpHost { address: owned() })?;
                (IpAddr::V6(ip), port)
            }
            None => {
                let Some((host, port)) = authority.rsplit_once(':') else {
                    return Err(if authority.is_empty() {
                        AddressError::TcpHost { address: owned() }
                    } else {
                        AddressError::TcpPort { address: owned() }
                    });
                };
                // Only dotted IPv4 here: an IPv6 literal must be bracketed.
                let ip = host
                    .parse::<std::net::Ipv4Addr>()
                    .map_err(|_| AddressError::TcpHost { address: owned() })?;
                (IpAddr::V4(ip), port)
            }
        };
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AddressError::TcpPort { address: owned() });
        }
        let port = port
            .parse::<u16>()
            .map_err(|_| AddressError::TcpPort { address: owned() })?;
        Ok(EndpointAddress::Tcp(SocketAddr::new(host, port)))
    }

    /// The address in `SPIFFE_ENDPOINT_SOCKET` (E-07).
    ///
    /// # Errors
    ///
    /// [`AddressError::NotConfigured`] when the variable is unset,
    /// [`AddressError::NotUnicode`], or the parse error of its value.
    pub fn from_env() -> Result<Self, AddressError> {
        match std::env::var(SPIFFE_ENDPOINT_SOCKET) {
            Ok(value) => EndpointAddress::parse(&value),
            Err(std::env::VarError::NotPresent) => Err(AddressError::NotConfigured),
            Err(std::env::VarError::NotUnicode(_)) => Err(AddressError::NotUnicode),
        }
    }

    /// `explicit` when given, else [`EndpointAddress::from_env`]: an
    /// explicitly configured address always wins (E-07).
    ///
    /// # Errors
    ///
    /// As [`EndpointAddress::parse`] and [`EndpointAddress::from_env`].
    pub fn resolve(explicit: Option<&str>) -> Result<Self, AddressError> {
        match explicit {
            Some(address) => EndpointAddress::parse(address),
            None => EndpointAddress::from_env(),
        }
    }
}

impl FromStr for EndpointAddress {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EndpointAddress::parse(s)
    }
}

impl fmt::Display for EndpointAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointAddress::Unix(path) => {
                f.write_str("unix://")?;
                for byte in path.as_os_str().as_encoded_bytes() {
                    if byte.is_ascii_alphanumeric() || b"/-._~".contains(byte) {
                        write!(f, "{}", char::from(*byte))?;
                    } else {
                        write!(f, "%{byte:02X}")?;
                    }
                }
                Ok(())
            }
            EndpointAddress::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

/// Splits `s` at the first `sep`, returning what follows it, if present.
fn split_off(s: &str, sep: char) -> (&str, Option<&str>) {
    match s.split_once(sep) {
        Some((before, after)) => (before, Some(after)),
        None => (s, None),
    }
}

/// Decodes `%XX` escapes; `None` for a malformed escape, a NUL byte or a
/// result that is not UTF-8.
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = path.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    if out.contains(&0) {
        return None;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(p: &str) -> EndpointAddress {
        EndpointAddress::Unix(PathBuf::from(p))
    }

    fn tcp(s: &str) -> EndpointAddress {
        EndpointAddress::Tcp(s.parse().unwrap())
    }

    // One row per line of the checklist's `SPIFFE_ENDPOINT_SOCKET` table.
    #[test]
    fn e_08_to_e_10_checklist_table() {
        use AddressError as E;
        let ok: &[(&str, EndpointAddress)] = &[
            ("unix:///run/agent.sock", unix("/run/agent.sock")),
            ("unix:/run/agent.sock", unix("/run/agent.sock")),
            ("UNIX:///run/agent.sock", unix("/run/agent.sock")),
            ("unix:///run/a%20b.sock", unix("/run/a b.sock")),
            ("tcp://127.0.0.1:8000", tcp("127.0.0.1:8000")),
            ("tcp://[::1]:8000", tcp("[::1]:8000")),
        ];
        for (input, want) in ok {
            assert_eq!(&EndpointAddress::parse(input).unwrap(), want, "{input}");
        }
        type Kind = fn(&E) -> bool;
        let bad: &[(&str, Kind)] = &[
            ("unix:run/agent.sock", |e| matches!(e, E::Opaque { .. })),
            ("unix://agent.sock", |e| {
                matches!(e, E::UnixAuthority { .. })
            }),
            ("unix://host/run/agent.sock", |e| {
                matches!(e, E::UnixAuthority { .. })
            }),
            ("unix://", |e| matches!(e, E::UnixPath { .. })),
            ("unix:", |e| matches!(e, E::UnixPath { .. })),
            ("unix:///run/a.sock?x=1", |e| matches!(e, E::Query { .. })),
            ("unix:///run/a.sock#f", |e| matches!(e, E::Fragment { .. })),
            ("unix://john:doe@foo/path", |e| {
                matches!(e, E::UserInfo { .. })
            }),
            ("unix:///run/%zz.sock", |e| matches!(e, E::UnixPath { .. })),
            ("unix:///run/%00.sock", |e| matches!(e, E::UnixPath { .. })),
            ("tcp://::1:8000", |e| matches!(e, E::TcpHost { .. })),
            ("tcp://127.0.0.1:8000/", |e| matches!(e, E::TcpPath { .. })),
            ("tcp://127.0.0.1:8000/foo", |e| {
                matches!(e, E::TcpPath { .. })
            }),
            ("tcp://localhost:8000", |e| matches!(e, E::TcpHost { .. })),
            ("tcp://127.0.0.1", |e| matches!(e, E::TcpPort { .. })),
            ("tcp://127.0.0.1:", |e| matches!(e, E::TcpPort { .. })),
            ("tcp://[::1]", |e| matches!(e, E::TcpPort { .. })),
            ("tcp://user@127.0.0.1:8000", |e| {
                matches!(e, E::UserInfo { .. })
            }),
            ("tcp://1.2.3.4:5?whatever", |e| matches!(e, E::Query { .. })),
            ("tcp://1.2.3.4:5#whatever", |e| {
                matches!(e, E::Fragment { .. })
            }),
            ("tcp:127.0.0.1:8000", |e| matches!(e, E::Opaque { .. })),
            ("tcp://", |e| matches!(e, E::TcpHost { .. })),
            ("tcp://127.0.0.1:99999", |e| matches!(e, E::TcpPort { .. })),
            ("tcp://127.0.0.1:abc", |e| matches!(e, E::TcpPort { .. })),
            ("tcp://127.0.0.1:+80", |e| matches!(e, E::TcpPort { .. })),
            ("/run/agent.sock", |e| matches!(e, E::Scheme { .. })),
            ("http://127.0.0.1:8000", |e| matches!(e, E::Scheme { .. })),
            ("npipe:foo", |e| matches!(e, E::Scheme { .. })),
            ("", |e| matches!(e, E::Scheme { .. })),
        ];
        for (input, kind) in bad {
            let err = EndpointAddress::parse(input).unwrap_err();
            assert!(kind(&err), "{input}: unexpected {err:?}");
        }
    }

    #[test]
    fn display_round_trips() {
        for input in [
            "unix:///run/agent.sock",
            "unix:///tmp/a%20b/c.sock",
            "tcp://127.0.0.1:8000",
            "tcp://[::1]:8000",
        ] {
            let parsed = EndpointAddress::parse(input).unwrap();
            assert_eq!(parsed.to_string(), input);
            assert_eq!(EndpointAddress::parse(&parsed.to_string()).unwrap(), parsed);
        }
    }

    #[test]
    fn e_07_explicit_address_wins() {
        // Only the explicit branch: the environment is process-global and
        // other tests run in parallel.
        assert_eq!(
            EndpointAddress::resolve(Some("unix:///a")).unwrap(),
            unix("/a")
        );
    }
}
