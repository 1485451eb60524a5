//! End-to-end SPIFFE mTLS with real rustls handshakes, in memory: two trust
//! domains (`a.test`, `b.test`) with their own development CAs, a federated
//! bundle set holding both, a client of `a.test` and a server of `b.test`.
//! Each failing handshake asserts the exact error of the side that rejected
//! the peer.
#![cfg(all(feature = "rustls", feature = "issuer"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{id, td};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ClientConnection, Connection, Error,
    HandshakeKind, ServerConfig, ServerConnection, SignatureScheme,
};
use spiffe_bundle::{BundleSet, JwtBundle, SpiffeBundle, X509BundleSource};
use spiffe_id::SpiffeId;
use spiffe_svid::cache::VerificationCache;
use spiffe_svid::issuer::{Defect, DevCa, IssuedSvid, SvidSpec};
use spiffe_svid::tls::{
    RotatingSvid, SpiffeClientCertVerifier, SpiffeServerCertVerifier, authorization_error,
    mtls_client_config, mtls_server_config, x509_svid_error,
};
use spiffe_svid::{
    AuthorizationError, Authorizer, IdMatcher, VerifiedX509Svid, X509Svid, X509SvidError,
    default_crypto_provider,
};

const CLIENT_ID: &str = "spiffe://a.test/client";
const SERVER_ID: &str = "spiffe://b.test/server";

fn now() -> u64 {
    UnixTime::now().as_secs()
}

fn at(secs: u64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(secs))
}

/// A leaf valid from a minute ago for an hour.
fn issue(ca: &DevCa, spiffe_id: &str) -> IssuedSvid {
    ca.issue(&SvidSpec::new(
        id(spiffe_id),
        at(now() - 60),
        at(now() + 3_600),
    ))
    .unwrap()
}

fn svid(ca: &DevCa, spiffe_id: &str) -> X509Svid {
    issue(ca, spiffe_id).to_x509_svid().unwrap()
}

fn spiffe_bundle(ca: &DevCa) -> SpiffeBundle {
    let td = ca.trust_domain().clone();
    SpiffeBundle::new(ca.bundle(), JwtBundle::empty(td), None, None).unwrap()
}

struct World {
    a: DevCa,
    b: DevCa,
    bundles: Arc<BundleSet>,
}

fn world() -> World {
    let a = DevCa::new(td("a.test")).unwrap();
    let b = DevCa::new(td("b.test")).unwrap();
    let bundles = Arc::new(BundleSet::new());
    bundles.insert(spiffe_bundle(&a));
    bundles.insert(spiffe_bundle(&b));
    World { a, b, bundles }
}

fn source(world: &World) -> Arc<dyn X509BundleSource + Send + Sync> {
    Arc::clone(&world.bundles) as Arc<dyn X509BundleSource + Send + Sync>
}

fn server_config(
    world: &World,
    authorizer: impl Authorizer + 'static,
    svid: Arc<RotatingSvid>,
) -> Arc<ServerConfig> {
    let verifier = SpiffeClientCertVerifier::new(source(world), authorizer).unwrap();
    Arc::new(mtls_server_config(verifier, svid).unwrap())
}

fn client_config(
    world: &World,
    authorizer: impl Authorizer + 'static,
    svid: Arc<RotatingSvid>,
) -> Arc<ClientConfig> {
    let verifier = SpiffeServerCertVerifier::new(source(world), authorizer).unwrap();
    Arc::new(mtls_client_config(verifier, svid).unwrap())
}

/// The standard pair: the server allows exactly the client and vice versa.
fn configs(
    world: &World,
    client_svid: X509Svid,
    server_svid: X509Svid,
) -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    (
        client_config(
            world,
            IdMatcher::exact(id(SERVER_ID)),
            Arc::new(RotatingSvid::new(client_svid)),
        ),
        server_config(
            world,
            IdMatcher::exact(id(CLIENT_ID)),
            Arc::new(RotatingSvid::new(server_svid)),
        ),
    )
}

struct Outcome {
    client: Result<(), Error>,
    server: Result<(), Error>,
    client_conn: ClientConnection,
    server_conn: ServerConnection,
}

impl Outcome {
    fn assert_ok(&self) {
        assert!(self.client.is_ok(), "client: {:?}", self.client);
        assert!(self.server.is_ok(), "server: {:?}", self.server);
        assert!(!self.client_conn.is_handshaking());
        assert!(!self.server_conn.is_handshaking());
    }

    fn client_err(&self) -> &Error {
        self.client
            .as_ref()
            .expect_err("the client should have failed")
    }

    fn server_err(&self) -> &Error {
        self.server
            .as_ref()
            .expect_err("the server should have failed")
    }

    /// The leaf the client presented, as the server saw it.
    fn client_leaf(&self) -> CertificateDer<'static> {
        self.server_conn.peer_certificates().unwrap()[0].clone()
    }

    /// The leaf the server presented, as the client saw it.
    fn server_leaf(&self) -> CertificateDer<'static> {
        self.client_conn.peer_certificates().unwrap()[0].clone()
    }
}

/// Moves every pending TLS record from `from` to `to`; `to`'s first error
/// is kept and it is not fed again afterwards. Returns whether bytes moved.
fn transfer(from: &mut Connection, to: &mut Connection, to_result: &mut Result<(), Error>) -> bool {
    let mut bytes = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut bytes).unwrap();
    }
    if bytes.is_empty() {
        return false;
    }
    let mut rest = &bytes[..];
    while to_result.is_ok() && !rest.is_empty() {
        to.read_tls(&mut rest).unwrap();
        if let Err(e) = to.process_new_packets() {
            *to_result = Err(e);
        }
    }
    true
}

/// A full handshake between fresh connections of the two configs. The
/// client dials a name that appears in no certificate: SPIFFE peers are
/// authorized by ID, never by DNS name.
fn handshake(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>) -> Outcome {
    let name = ServerName::try_from("unrelated.example").unwrap();
    let mut c = Connection::Client(ClientConnection::new(Arc::clone(client), name).unwrap());
    let mut s = Connection::Server(ServerConnection::new(Arc::clone(server)).unwrap());
    let (mut client_result, mut server_result) = (Ok(()), Ok(()));
    for _ in 0..32 {
        let sent = transfer(&mut c, &mut s, &mut server_result);
        let received = transfer(&mut s, &mut c, &mut client_result);
        if !sent && !received {
            break;
        }
    }
    let (Connection::Client(client_conn), Connection::Server(server_conn)) = (c, s) else {
        unreachable!()
    };
    Outcome {
        client: client_result,
        server: server_result,
        client_conn,
        server_conn,
    }
}

fn assert_svid_error(error: &Error, expected: &X509SvidError) {
    assert!(
        matches!(error, Error::InvalidCertificate(CertificateError::Other(_))),
        "{error:?}"
    );
    assert_eq!(x509_svid_error(error), Some(expected), "{error:?}");
    assert_eq!(authorization_error(error), None);
}

fn assert_denied(error: &Error, denied: &str) {
    assert_eq!(
        authorization_error(error),
        Some(&AuthorizationError::Denied { id: id(denied) }),
        "{error:?}"
    );
    assert_eq!(x509_svid_error(error), None);
}

// --- Success ---

#[test]
fn federated_mtls_between_two_trust_domains() {
    let w = world();
    let client_svid = svid(&w.a, CLIENT_ID);
    let server_svid = svid(&w.b, SERVER_ID);
    let (client_leaf, server_leaf) = (client_svid.leaf().clone(), server_svid.leaf().clone());
    let (client, server) = configs(&w, client_svid, server_svid);

    let out = handshake(&client, &server);
    out.assert_ok();
    assert_eq!(out.client_leaf(), client_leaf);
    assert_eq!(out.server_leaf(), server_leaf);
    assert_eq!(out.client_conn.handshake_kind(), Some(HandshakeKind::Full));

    // Application data flows both ways.
    let (mut c, mut s) = (
        Connection::Client(out.client_conn),
        Connection::Server(out.server_conn),
    );
    std::io::Write::write_all(&mut c.writer(), b"ping").unwrap();
    let mut ok = Ok(());
    transfer(&mut c, &mut s, &mut ok);
    ok.unwrap();
    let mut buf = [0u8; 4];
    std::io::Read::read_exact(&mut s.reader(), &mut buf).unwrap();
    assert_eq!(&buf, b"ping");
}

#[test]
fn intermediate_cas_and_ip_server_names_work() {
    let w = world();
    let inter = w.a.intermediate(&Default::default()).unwrap();
    let (client, server) = configs(&w, svid(&inter, CLIENT_ID), svid(&w.b, SERVER_ID));
    // Three-certificate chain (leaf, intermediate) verified by the server.
    let out = handshake(&client, &server);
    out.assert_ok();
    assert_eq!(out.server_conn.peer_certificates().unwrap().len(), 2);

    // An IP address as the server name is fine too: names are ignored.
    let name = ServerName::try_from("192.0.2.7").unwrap();
    let mut c = Connection::Client(ClientConnection::new(client, name).unwrap());
    let mut s = Connection::Server(ServerConnection::new(server).unwrap());
    let (mut cr, mut sr) = (Ok(()), Ok(()));
    for _ in 0..32 {
        let sent = transfer(&mut c, &mut s, &mut sr);
        let received = transfer(&mut s, &mut c, &mut cr);
        if !sent && !received {
            break;
        }
    }
    cr.unwrap();
    sr.unwrap();
    assert!(!c.is_handshaking());
}

// --- Wrong client peers, rejected by the server ---

#[test]
fn client_from_a_trust_domain_without_bundle_is_rejected() {
    let w = world();
    let c_ca = DevCa::new(td("c.test")).unwrap();
    let server = server_config(
        &w,
        IdMatcher::any(),
        Arc::new(RotatingSvid::new(svid(&w.b, SERVER_ID))),
    );
    let client = client_config(
        &w,
        IdMatcher::any(),
        Arc::new(RotatingSvid::new(svid(&c_ca, "spiffe://c.test/client"))),
    );
    let out = handshake(&client, &server);
    assert_svid_error(
        out.server_err(),
        &X509SvidError::NoBundle {
            trust_domain: td("c.test"),
        },
    );
    assert_eq!(
        out.client_err(),
        &Error::AlertReceived(AlertDescription::CertificateUnknown)
    );
}

#[test]
fn client_denied_by_the_authorizer_names_its_id() {
    let w = world();
    let (client, server) = configs(
        &w,
        svid(&w.a, "spiffe://a.test/intruder"),
        svid(&w.b, SERVER_ID),
    );
    let out = handshake(&client, &server);
    assert_denied(out.server_err(), "spiffe://a.test/intruder");
    assert!(
        out.server_err()
            .to_string()
            .contains("spiffe://a.test/intruder")
    );
}

#[test]
fn expired_client_svid_is_rejected_as_expired() {
    let w = world();
    let (from, to) = (now() - 7_200, now() - 3_600);
    let expired =
        w.a.issue(&SvidSpec::new(id(CLIENT_ID), at(from), at(to)))
            .unwrap()
            .to_x509_svid()
            .unwrap();
    let (client, server) = configs(&w, expired, svid(&w.b, SERVER_ID));
    let out = handshake(&client, &server);
    match out.server_err() {
        Error::InvalidCertificate(CertificateError::ExpiredContext { not_after, .. }) => {
            assert_eq!(not_after.as_secs(), to);
        }
        other => panic!("expected an expired certificate, got {other:?}"),
    }
    assert_eq!(
        out.client_err(),
        &Error::AlertReceived(AlertDescription::CertificateExpired)
    );
}

#[test]
fn chain_failure_is_not_hidden_behind_a_denial() {
    let w = world();
    let expired =
        w.a.issue(&SvidSpec::new(
            id(CLIENT_ID),
            at(now() - 7_200),
            at(now() - 3_600),
        ))
        .unwrap()
        .to_x509_svid()
        .unwrap();
    let deny_all =
        |peer: &VerifiedX509Svid| Err(AuthorizationError::denied(peer.spiffe_id().clone()));
    let server = server_config(
        &w,
        deny_all,
        Arc::new(RotatingSvid::new(svid(&w.b, SERVER_ID))),
    );
    let client = client_config(&w, IdMatcher::any(), Arc::new(RotatingSvid::new(expired)));
    let out = handshake(&client, &server);
    assert!(matches!(
        out.server_err(),
        Error::InvalidCertificate(CertificateError::ExpiredContext { .. })
    ));
    assert_eq!(authorization_error(out.server_err()), None);
}

#[test]
fn client_signed_by_a_ca_outside_its_bundle_is_rejected() {
    let w = world();
    // Another CA claiming a.test, whose root is not in a.test's bundle.
    let rogue = DevCa::new(td("a.test")).unwrap();
    let (client, server) = configs(&w, svid(&rogue, CLIENT_ID), svid(&w.b, SERVER_ID));
    let out = handshake(&client, &server);
    assert_eq!(
        out.server_err(),
        &Error::InvalidCertificate(CertificateError::UnknownIssuer)
    );
    assert_eq!(
        out.client_err(),
        &Error::AlertReceived(AlertDescription::UnknownCA)
    );
}

/// Presents a fixed chain and key, bypassing `X509Svid`'s own checks.
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesClientCert for Fixed {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
    fn has_certs(&self) -> bool {
        true
    }
}

fn client_presenting(
    w: &World,
    chain: Vec<CertificateDer<'static>>,
    pkcs8: &[u8],
) -> Arc<ClientConfig> {
    let provider = default_crypto_provider().unwrap();
    let key = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            pkcs8.to_vec(),
        )))
        .unwrap();
    let verifier = SpiffeServerCertVerifier::new(source(w), IdMatcher::any()).unwrap();
    let mut config = mtls_client_config(verifier, RotatingSvid::empty()).unwrap();
    config.client_auth_cert_resolver = Arc::new(Fixed(Arc::new(CertifiedKey::new(chain, key))));
    Arc::new(config)
}

#[test]
fn ca_certificate_presented_as_leaf_is_rejected() {
    let w = world();
    let server = server_config(
        &w,
        IdMatcher::any(),
        Arc::new(RotatingSvid::new(svid(&w.b, SERVER_ID))),
    );
    // The a.test root itself (its SPIFFE ID has no path, cA=true). The
    // chain is rejected before the handshake signature is looked at, so any
    // key will do.
    let some_key = issue(&w.a, CLIENT_ID);
    let client = client_presenting(&w, vec![w.a.root_certificate().clone()], some_key.key_der());
    let out = handshake(&client, &server);
    assert_svid_error(
        out.server_err(),
        &X509SvidError::LeafIdWithoutPath {
            id: "spiffe://a.test".to_owned(),
        },
    );

    // A leaf-shaped certificate with cA=true, presented with its own key.
    let ca_leaf =
        w.a.issue(
            &SvidSpec::new(id(CLIENT_ID), at(now() - 60), at(now() + 3_600))
                .defect(Defect::LeafIsCa),
        )
        .unwrap();
    let client = client_presenting(&w, ca_leaf.chain().to_vec(), ca_leaf.key_der());
    let out = handshake(&client, &server);
    assert_svid_error(out.server_err(), &X509SvidError::LeafIsCa);
}

#[test]
fn missing_client_certificate_is_rejected() {
    let w = world();
    let server = server_config(
        &w,
        IdMatcher::any(),
        Arc::new(RotatingSvid::new(svid(&w.b, SERVER_ID))),
    );
    let client = client_config(&w, IdMatcher::any(), Arc::new(RotatingSvid::empty()));
    let out = handshake(&client, &server);
    assert_eq!(out.server_err(), &Error::NoCertificatesPresented);
    assert_eq!(
        out.client_err(),
        &Error::AlertReceived(AlertDescription::CertificateRequired)
    );
}

// --- Wrong server peers, rejected by the client ---

#[test]
fn server_failures_are_reported_by_the_client() {
    let w = world();
    let c_ca = DevCa::new(td("c.test")).unwrap();
    let rogue_b = DevCa::new(td("b.test")).unwrap();

    // Unknown trust domain.
    let (client, server) = configs(
        &w,
        svid(&w.a, CLIENT_ID),
        svid(&c_ca, "spiffe://c.test/server"),
    );
    assert_svid_error(
        handshake(&client, &server).client_err(),
        &X509SvidError::NoBundle {
            trust_domain: td("c.test"),
        },
    );

    // Another CA claiming b.test.
    let (client, server) = configs(&w, svid(&w.a, CLIENT_ID), svid(&rogue_b, SERVER_ID));
    let out = handshake(&client, &server);
    assert_eq!(
        out.client_err(),
        &Error::InvalidCertificate(CertificateError::UnknownIssuer)
    );
    assert_eq!(
        out.server_err(),
        &Error::AlertReceived(AlertDescription::UnknownCA)
    );

    // A verified server whose ID the client does not accept.
    let (client, server) = configs(
        &w,
        svid(&w.a, CLIENT_ID),
        svid(&w.b, "spiffe://b.test/impostor"),
    );
    assert_denied(
        handshake(&client, &server).client_err(),
        "spiffe://b.test/impostor",
    );
}

// --- Rotation, resumption and caching ---

#[test]
fn rotation_serves_the_new_svid_on_the_next_handshake() {
    let w = world();
    let server_svid = Arc::new(RotatingSvid::new(svid(&w.b, SERVER_ID)));
    let client_svid = Arc::new(RotatingSvid::new(svid(&w.a, CLIENT_ID)));
    let server = server_config(
        &w,
        IdMatcher::exact(id(CLIENT_ID)),
        Arc::clone(&server_svid),
    );
    let client = client_config(
        &w,
        IdMatcher::member_of(td("b.test")),
        Arc::clone(&client_svid),
    );

    let first = handshake(&client, &server);
    first.assert_ok();

    let rotated_server = svid(&w.b, SERVER_ID);
    let rotated_client = svid(&w.a, CLIENT_ID);
    let (new_server_leaf, new_client_leaf) =
        (rotated_server.leaf().clone(), rotated_client.leaf().clone());
    assert_ne!(first.server_leaf(), new_server_leaf);
    server_svid.set(rotated_server);
    client_svid.set(rotated_client);

    let second = handshake(&client, &server);
    second.assert_ok();
    assert_eq!(second.server_leaf(), new_server_leaf);
    assert_eq!(second.client_leaf(), new_client_leaf);

    // A rotation to another identity is authorized like any other peer.
    server_svid.set(svid(&w.b, "spiffe://b.test/server-v2"));
    let third = handshake(&client, &server);
    third.assert_ok();
    let leaf = third.server_leaf();
    let verified = spiffe_svid::verify_x509_svid(&[leaf], &*w.bundles, UnixTime::now()).unwrap();
    assert_eq!(verified.spiffe_id(), &id("spiffe://b.test/server-v2"));
}

#[test]
fn no_resumption_so_policy_and_bundle_changes_apply_to_the_next_handshake() {
    let w = world();
    let allow = Arc::new(AtomicBool::new(true));
    let policy = {
        let allow = Arc::clone(&allow);
        move |peer: &VerifiedX509Svid| {
            if allow.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err(AuthorizationError::denied_because(
                    peer.spiffe_id().clone(),
                    "revoked",
                ))
            }
        }
    };
    let server = server_config(
        &w,
        policy,
        Arc::new(RotatingSvid::new(svid(&w.b, SERVER_ID))),
    );
    let client = client_config(
        &w,
        IdMatcher::exact(id(SERVER_ID)),
        Arc::new(RotatingSvid::new(svid(&w.a, CLIENT_ID))),
    );
    assert!(!server.session_storage.can_cache());
    assert_eq!(server.send_tls13_tickets, 0);

    for _ in 0..3 {
        let out = handshake(&client, &server);
        out.assert_ok();
        assert_eq!(out.client_conn.handshake_kind(), Some(HandshakeKind::Full));
        assert_eq!(out.server_conn.handshake_kind(), Some(HandshakeKind::Full));
    }

    // The policy changes: the very next connection is refused.
    allow.store(false, Ordering::SeqCst);
    let out = handshake(&client, &server);
    assert_eq!(
        authorization_error(out.server_err()),
        Some(&AuthorizationError::denied_because(
            id(CLIENT_ID),
            "revoked"
        ))
    );

    // The policy allows again, but a.test is no longer federated.
    allow.store(true, Ordering::SeqCst);
    handshake(&client, &server).assert_ok();
    w.bundles.remove(&td("a.test"));
    assert_svid_error(
        handshake(&client, &server).server_err(),
        &X509SvidError::NoBundle {
            trust_domain: td("a.test"),
        },
    );
}

/// The control for the test above: with resumption turned back on, a
/// resumed session skips both verifiers, so a revoked peer gets in. This is
/// why the helper-built configs disable it.
#[test]
fn resumption_would_bypass_the_verifier() {
    let w = world();
    let allow = Arc::new(AtomicBool::new(true));
    let policy = {
        let allow = Arc::clone(&allow);
        move |peer: &VerifiedX509Svid| {
            if allow.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err(AuthorizationError::denied(peer.spiffe_id().clone()))
            }
        }
    };
    let verifier = SpiffeClientCertVerifier::new(source(&w), policy).unwrap();
    let mut server =
        mtls_server_config(verifier, RotatingSvid::new(svid(&w.b, SERVER_ID))).unwrap();
    server.session_storage = rustls::server::ServerSessionMemoryCache::new(16);
    server.send_tls13_tickets = 2;
    let server = Arc::new(server);
    let verifier = SpiffeServerCertVerifier::new(source(&w), IdMatcher::any()).unwrap();
    let mut client =
        mtls_client_config(verifier, RotatingSvid::new(svid(&w.a, CLIENT_ID))).unwrap();
    client.resumption = rustls::client::Resumption::default();
    let client = Arc::new(client);

    handshake(&client, &server).assert_ok();
    allow.store(false, Ordering::SeqCst);
    let out = handshake(&client, &server);
    out.assert_ok();
    assert_eq!(
        out.server_conn.handshake_kind(),
        Some(HandshakeKind::Resumed)
    );
}

#[test]
fn cached_verifier_hits_and_fails_closed_on_bundle_removal() {
    let w = world();
    let cache = Arc::new(VerificationCache::new(source(&w)).unwrap());
    let verifier =
        SpiffeClientCertVerifier::with_cache(Arc::clone(&cache), IdMatcher::exact(id(CLIENT_ID)));
    let server =
        Arc::new(mtls_server_config(verifier, RotatingSvid::new(svid(&w.b, SERVER_ID))).unwrap());
    let client = client_config(
        &w,
        IdMatcher::exact(id(SERVER_ID)),
        Arc::new(RotatingSvid::new(svid(&w.a, CLIENT_ID))),
    );

    handshake(&client, &server).assert_ok();
    handshake(&client, &server).assert_ok();
    handshake(&client, &server).assert_ok();
    assert_eq!((cache.stats().hits, cache.stats().misses), (2, 1));

    // A cached verdict is still authorized on every handshake.
    let intruder = client_config(
        &w,
        IdMatcher::any(),
        Arc::new(RotatingSvid::new(svid(&w.a, "spiffe://a.test/intruder"))),
    );
    assert_denied(
        handshake(&intruder, &server).server_err(),
        "spiffe://a.test/intruder",
    );
    assert_denied(
        handshake(&intruder, &server).server_err(),
        "spiffe://a.test/intruder",
    );

    // Bundle gone: the cached verdict is not used.
    w.bundles.remove(&td("a.test"));
    assert_svid_error(
        handshake(&client, &server).server_err(),
        &X509SvidError::NoBundle {
            trust_domain: td("a.test"),
        },
    );
}

#[test]
fn verifiers_ignore_the_server_name_and_offer_no_ca_names() {
    use rustls::client::danger::ServerCertVerifier;
    use rustls::server::danger::ClientCertVerifier;

    let w = world();
    let server_svid = svid(&w.b, SERVER_ID);
    let verifier =
        SpiffeServerCertVerifier::new(source(&w), IdMatcher::exact(id(SERVER_ID))).unwrap();
    for name in ["b.test", "server", "10.0.0.1"] {
        verifier
            .verify_server_cert(
                server_svid.leaf(),
                &server_svid.chain()[1..],
                &ServerName::try_from(name).unwrap(),
                &[],
                UnixTime::now(),
            )
            .unwrap();
    }
    let peer = verifier
        .verify_peer(server_svid.leaf(), &[], UnixTime::now())
        .unwrap();
    assert_eq!(peer.spiffe_id(), &SpiffeId::parse(SERVER_ID).unwrap());
    assert!(verifier.root_hint_subjects().is_none());
    assert!(!verifier.supported_verify_schemes().is_empty());

    let client_verifier = SpiffeClientCertVerifier::new(source(&w), IdMatcher::any()).unwrap();
    assert!(client_verifier.offer_client_auth());
    assert!(client_verifier.client_auth_mandatory());
    assert!(client_verifier.root_hint_subjects().is_empty());
    assert_eq!(
        client_verifier.supported_verify_schemes(),
        default_crypto_provider()
            .unwrap()
            .signature_verification_algorithms
            .supported_schemes()
    );
}
