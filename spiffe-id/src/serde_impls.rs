//! String (de)serialization, behind the `serde` feature.
//!
//! Each type serializes as the string its `Display` gives and deserializes
//! through its strict parser, so a round trip gives the same value and
//! invalid input is an error. A [`TrustDomain`] deserializes from a bare name
//! only, which is what it serializes to.

use core::fmt;
use core::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};

use crate::{IstioIdentity, SpiffeId, SpiffeIdError, TrustDomain};

struct StrVisitor<T> {
    expecting: &'static str,
    parse: fn(&str) -> Result<T, SpiffeIdError>,
    _marker: PhantomData<T>,
}

impl<T> Visitor<'_> for StrVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.parse)(v).map_err(E::custom)
    }
}

fn deserialize_with<'de, D: Deserializer<'de>, T>(
    deserializer: D,
    expecting: &'static str,
    parse: fn(&str) -> Result<T, SpiffeIdError>,
) -> Result<T, D::Error> {
    deserializer.deserialize_str(StrVisitor {
        expecting,
        parse,
        _marker: PhantomData,
    })
}

impl Serialize for SpiffeId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SpiffeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_with(deserializer, "a SPIFFE ID string", SpiffeId::parse)
    }
}

impl Serialize for TrustDomain {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TrustDomain {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_with(deserializer, "a trust-domain name", TrustDomain::new)
    }
}

impl Serialize for IstioIdentity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for IstioIdentity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_with(
            deserializer,
            "an Istio SPIFFE ID string",
            IstioIdentity::parse,
        )
    }
}
