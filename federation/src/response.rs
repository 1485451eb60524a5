//! Checks on a bundle endpoint's response, kept apart from the network code
//! so each is a plain function of its input.

use hyper::body::Body;
use hyper::header::HeaderValue;
use spiffe_bundle::{ParseOptions, SpiffeBundle, X509Bundle};
use spiffe_id::{SpiffeIdRef, TrustDomain};
use x509_parser::extensions::GeneralName;

/// Whether a `Content-Type` is acceptable for a SPIFFE bundle.
///
/// Absent is accepted: the server SHOULD set `application/json` (rule F-14),
/// so a server that does not is still conformant, and the body must parse as
/// a bundle anyway. Present, it must be `application/json` or a structured
/// `+json` type (RFC 6839, such as `application/jwk-set+json`); a `charset`
/// parameter, if any, must name UTF-8, the only encoding rule F-14 allows.
///
/// On refusal returns the value as text, for the error.
pub(crate) fn check_content_type(value: Option<&HeaderValue>) -> Result<(), String> {
    let Some(value) = value else {
        return Ok(());
    };
    let text = value
        .to_str()
        .map_err(|_| String::from_utf8_lossy(value.as_bytes()).into_owned())?;
    let refuse = || Err(text.to_owned());
    let mut parts = text.split(';');
    let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let json = media == "application/json"
        || media
            .strip_prefix("application/")
            .is_some_and(|sub| sub.len() > "+json".len() && sub.ends_with("+json"));
    if !json {
        return refuse();
    }
    for param in parts {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("charset") {
            let charset = value.trim().trim_matches('"');
            if !charset.eq_ignore_ascii_case("utf-8") && !charset.eq_ignore_ascii_case("utf8") {
                return refuse();
            }
        }
    }
    Ok(())
}

/// Whether a `Content-Encoding` is acceptable: none or `identity` (the
/// client asks for no compression).
pub(crate) fn check_content_encoding(value: Option<&HeaderValue>) -> Result<(), String> {
    match value {
        None => Ok(()),
        Some(v) if v.as_bytes().eq_ignore_ascii_case(b"identity") => Ok(()),
        Some(v) => Err(format!(
            "unsupported Content-Encoding {:?}",
            String::from_utf8_lossy(v.as_bytes())
        )),
    }
}

/// Why reading a body stopped.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// More than the limit.
    TooLarge,
    /// The connection failed while the body was read.
    Http(String),
}

/// Reads a body into memory, stopping as soon as it would exceed `limit`
/// bytes: at most `limit` bytes plus one received frame are ever held.
pub(crate) async fn read_body<B>(mut body: B, limit: usize) -> Result<Vec<u8>, BodyError>
where
    B: Body + Unpin,
    B::Error: std::fmt::Display,
{
    use http_body_util::BodyExt as _;
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Http(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            let chunk = bytes::Buf::chunk(&data);
            if chunk.len() > limit.saturating_sub(out.len()) {
                return Err(BodyError::TooLarge);
            }
            out.extend_from_slice(chunk);
        }
    }
    Ok(out)
}

/// Parses a body as the bundle of `trust_domain`.
pub(crate) fn parse_bundle(
    trust_domain: &TrustDomain,
    body: &[u8],
    options: &ParseOptions,
) -> Result<SpiffeBundle, spiffe_bundle::BundleError> {
    SpiffeBundle::parse_with(trust_domain.clone(), body, options)
}

/// The trust-domain check on a bundle's X.509 authorities (see the crate
/// docs): among the authorities that carry a SPIFFE ID (rule X-08 says a
/// signing certificate SHOULD), at least one must be in `expected`. Returns
/// the foreign trust domain found otherwise. A bundle whose authorities carry
/// no SPIFFE ID passes: nothing in it names a trust domain.
pub(crate) fn foreign_trust_domain(
    bundle: &X509Bundle,
    expected: &TrustDomain,
) -> Option<TrustDomain> {
    let mut foreign = None;
    for authority in bundle.authorities() {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(authority.der()) else {
            continue;
        };
        let Ok(Some(san)) = cert.subject_alternative_name() else {
            continue;
        };
        for name in &san.value.general_names {
            let GeneralName::URI(uri) = name else {
                continue;
            };
            let Ok(id) = SpiffeIdRef::parse(uri) else {
                continue;
            };
            if id.trust_domain_name() == expected.as_str() {
                return None;
            }
            if foreign.is_none() {
                foreign = Some(id.trust_domain());
            }
        }
    }
    foreign
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ct(v: &str) -> Result<(), String> {
        check_content_type(Some(&HeaderValue::from_str(v).unwrap()))
    }

    #[test]
    fn f14_content_type() {
        assert!(check_content_type(None).is_ok());
        assert!(ct("application/json").is_ok());
        assert!(ct("Application/JSON").is_ok());
        assert!(ct("application/json; charset=utf-8").is_ok());
        assert!(ct("application/json;charset=\"UTF-8\"").is_ok());
        assert!(ct("application/jwk-set+json").is_ok());
        assert!(ct("application/json; foo=bar").is_ok());
        assert_eq!(ct("text/html").unwrap_err(), "text/html");
        assert!(ct("text/html; charset=utf-8").is_err());
        assert!(ct("application/json; charset=iso-8859-1").is_err());
        assert!(ct("application/+json").is_err());
        assert!(ct("application/jsonp").is_err());
        assert!(ct("").is_err());
        assert!(
            check_content_type(Some(
                &HeaderValue::from_bytes(b"app\xfflication/json").unwrap()
            ))
            .is_err()
        );
    }

    #[test]
    fn content_encoding() {
        assert!(check_content_encoding(None).is_ok());
        assert!(check_content_encoding(Some(&HeaderValue::from_static("identity"))).is_ok());
        assert!(check_content_encoding(Some(&HeaderValue::from_static("gzip"))).is_err());
    }

    /// A body of the given chunks.
    struct Chunks(std::collections::VecDeque<bytes::Bytes>);

    impl Body for Chunks {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Self::Error>>>
        {
            std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(hyper::body::Frame::data(b))))
        }
    }

    fn chunks(n: usize, size: usize) -> Chunks {
        Chunks(
            (0..n)
                .map(|_| bytes::Bytes::from(vec![b'x'; size]))
                .collect(),
        )
    }

    #[tokio::test]
    async fn body_limit_is_enforced_while_reading() {
        assert!(matches!(
            read_body(chunks(10, 100), 999).await,
            Err(BodyError::TooLarge)
        ));
        assert_eq!(read_body(chunks(10, 100), 1000).await.unwrap().len(), 1000);
        assert_eq!(read_body(chunks(0, 0), 0).await.unwrap().len(), 0);
        assert!(matches!(
            read_body(chunks(1, 1), 0).await,
            Err(BodyError::TooLarge)
        ));
    }
}
