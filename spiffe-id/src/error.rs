//! The one error type of this crate.

use core::fmt;

/// What was wrong with a SPIFFE ID, trust domain, path, Istio identity or
/// principal.
///
/// Each variant names the rule of the SPIFFE ID specification (or of the Istio
/// convention) that the input broke; [`SpiffeIdError::rule`] gives the rule's
/// identifier from the project's spec checklist (`ID-08`, ...). Byte indices
/// count from the start of the string that was being checked: the whole ID for
/// [`SpiffeId`](crate::SpiffeId) parsing, the path for
/// [`validate_path`](crate::validate_path), the segment for
/// [`validate_path_segment`](crate::validate_path_segment).
///
/// When an input breaks several rules, the error is the first one met by a
/// left-to-right scan, in the order go-spiffe uses: the scheme, then the trust
/// domain bytes, then the path bytes. The one exception is the length limit,
/// which is checked before anything is scanned.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SpiffeIdError {
    /// The input is empty.
    Empty,
    /// The input does not start with exactly `spiffe://` (lowercase, with the
    /// `//` authority marker). Rule ID-01.
    WrongScheme,
    /// Nothing between `spiffe://` and the path, or an empty trust-domain name.
    /// Rule ID-02.
    MissingTrustDomain,
    /// A trust-domain byte outside `[a-z0-9._-]`: uppercase letters, `:` (a
    /// port), `@` (userinfo), `%` (percent-encoding), `?`, `#`, non-ASCII.
    /// Rules ID-05 to ID-09.
    BadTrustDomainChar {
        /// The offending byte.
        byte: u8,
        /// Its index in the checked string.
        index: usize,
    },
    /// The trust-domain name is longer than
    /// [`MAX_TRUST_DOMAIN_LEN`](crate::MAX_TRUST_DOMAIN_LEN) bytes. Rule ID-20.
    TrustDomainTooLong {
        /// The length of the trust-domain name, in bytes.
        len: usize,
    },
    /// The whole ID is longer than [`MAX_ID_LEN`](crate::MAX_ID_LEN) bytes.
    /// Rules ID-18 and ID-19.
    TooLong {
        /// The length of the input, in bytes.
        len: usize,
    },
    /// A path byte outside `[a-zA-Z0-9._-]` (and `/` between segments): `%`,
    /// `?` (a query), `#` (a fragment), space, `~`, `:`, `@`, sub-delimiters,
    /// control bytes, non-ASCII. Rules ID-03, ID-04, ID-12, ID-16.
    BadPathSegmentChar {
        /// The offending byte.
        byte: u8,
        /// Its index in the checked string.
        index: usize,
    },
    /// An empty path segment (`//`, or an empty segment given to a builder).
    /// Rule ID-13.
    EmptySegment {
        /// The index where the empty segment starts.
        index: usize,
    },
    /// A path segment that is exactly `.` or `..`. Rule ID-14.
    DotSegment {
        /// The index where the segment starts.
        index: usize,
    },
    /// The path ends with `/`, including a path that is only `/`. Rule ID-15.
    TrailingSlash,
    /// A non-empty path that does not start with `/` (path APIs only).
    NoLeadingSlash,
    /// A valid SPIFFE ID that does not have the Istio shape
    /// `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
    NotIstioIdentity,
    /// An Istio namespace that is not a Kubernetes DNS-1123 label (1 to 63
    /// bytes of `[a-z0-9-]`, starting and ending with a letter or digit).
    BadKubernetesNamespace,
    /// An Istio service account that is not a Kubernetes DNS-1123 subdomain
    /// (1 to 253 bytes, dot-separated DNS-1123 labels).
    BadKubernetesServiceAccount,
    /// An Istio authorization-policy principal that cannot be matched. The
    /// reason says why.
    BadPrincipal {
        /// Why the principal was rejected.
        reason: &'static str,
    },
}

impl SpiffeIdError {
    /// The identifier of the rule that was broken, as used in the project's
    /// SPIFFE spec checklist and in test names: `ID-01` to `ID-20` for the
    /// SPIFFE ID specification, `ISTIO` for the Istio identity shape, `K8S`
    /// for Kubernetes naming rules and `PRINCIPAL` for Istio principals.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::Empty | Self::WrongScheme => "ID-01",
            Self::MissingTrustDomain => "ID-02",
            Self::BadTrustDomainChar { byte, .. } => match byte {
                b'@' => "ID-05",
                b':' => "ID-06",
                b'A'..=b'Z' => "ID-07",
                b'%' => "ID-09",
                _ => "ID-08",
            },
            Self::TrustDomainTooLong { .. } => "ID-20",
            Self::TooLong { .. } => "ID-18",
            Self::BadPathSegmentChar { byte, .. } => match byte {
                b'?' => "ID-03",
                b'#' => "ID-04",
                b'%' => "ID-12",
                _ => "ID-16",
            },
            Self::EmptySegment { .. } => "ID-13",
            Self::DotSegment { .. } => "ID-14",
            Self::TrailingSlash => "ID-15",
            Self::NoLeadingSlash => "ID-16",
            Self::NotIstioIdentity => "ISTIO",
            Self::BadKubernetesNamespace | Self::BadKubernetesServiceAccount => "K8S",
            Self::BadPrincipal { .. } => "PRINCIPAL",
        }
    }
}

/// Writes a byte as a quoted printable character when it is one, and always
/// as hex, so control bytes and non-ASCII are visible in messages.
struct ShowByte(u8);

impl fmt::Display for ShowByte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "'{}' (0x{:02x})", char::from(self.0), self.0)
        } else {
            write!(f, "byte 0x{:02x}", self.0)
        }
    }
}

impl fmt::Display for SpiffeIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("SPIFFE ID is empty"),
            Self::WrongScheme => {
                f.write_str("SPIFFE ID must start with the lowercase scheme and authority `spiffe://`")
            }
            Self::MissingTrustDomain => f.write_str("trust domain is missing"),
            Self::BadTrustDomainChar { byte, index } => write!(
                f,
                "trust domain characters are limited to lowercase letters, numbers, dots, dashes \
                 and underscores; found {} at byte {index}",
                ShowByte(*byte)
            ),
            Self::TrustDomainTooLong { len } => write!(
                f,
                "trust domain is {len} bytes long; the limit is {}",
                crate::MAX_TRUST_DOMAIN_LEN
            ),
            Self::TooLong { len } => write!(
                f,
                "SPIFFE ID is {len} bytes long; the limit is {}",
                crate::MAX_ID_LEN
            ),
            Self::BadPathSegmentChar { byte, index } => write!(
                f,
                "path segment characters are limited to letters, numbers, dots, dashes and \
                 underscores (no percent-encoding, query or fragment); found {} at byte {index}",
                ShowByte(*byte)
            ),
            Self::EmptySegment { index } => {
                write!(f, "path cannot contain empty segments (at byte {index})")
            }
            Self::DotSegment { index } => write!(
                f,
                "path cannot contain `.` or `..` segments (at byte {index})"
            ),
            Self::TrailingSlash => f.write_str("path cannot have a trailing slash"),
            Self::NoLeadingSlash => f.write_str("path must start with a slash"),
            Self::NotIstioIdentity => f.write_str(
                "not an Istio identity: the path must be exactly /ns/<namespace>/sa/<service-account>",
            ),
            Self::BadKubernetesNamespace => f.write_str(
                "namespace is not a Kubernetes DNS-1123 label (1-63 of [a-z0-9-], starting and \
                 ending with a letter or digit)",
            ),
            Self::BadKubernetesServiceAccount => f.write_str(
                "service account is not a Kubernetes DNS-1123 subdomain (1-253 bytes of \
                 dot-separated DNS-1123 labels)",
            ),
            Self::BadPrincipal { reason } => write!(f, "invalid Istio principal: {reason}"),
        }
    }
}

impl core::error::Error for SpiffeIdError {}
