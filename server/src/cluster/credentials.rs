//! The cluster's credentials: one shared key, and what every node makes of
//! it — a TLS identity for the internal service, and a key that signs
//! heartbeats.
//!
//! The key is `--cluster-key-file` (the same file on every node; `eddy
//! cluster-key` makes one), or, without it, the secret the first node wrote
//! to the catalog log (anyone who can read the brokers can read that one:
//! give production clusters a key file).
//!
//! From the key, each node derives the same Ed25519 key pairs (HMAC-SHA256
//! of the key, as seeds): a CA, which it trusts and nothing else, and a node
//! identity the CA signs, named [`SERVER_NAME`]. The internal service
//! speaks TLS 1.3 and asks every client for a certificate, so a call
//! succeeds only between two processes holding the key, and its traffic is
//! encrypted; no secret travels in a request. Heartbeats carry an HMAC of
//! their content under another key derived from it, and a node ignores
//! heartbeats it cannot verify: a process without the key never becomes a
//! member, so no partition is placed on it and no read is routed to it.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ED25519,
};
use ring::hmac;
use rustls::pki_types::PrivatePkcs8KeyDer;
use std::path::Path;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::error::Error;

/// The name every node's internal certificate carries, and clients check.
pub const SERVER_NAME: &str = "eddy-cluster";

/// The shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;

/// What a node holds of its cluster's key.
pub struct Credentials {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
    heartbeats: hmac::Key,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").finish_non_exhaustive()
    }
}

impl Credentials {
    /// The credentials of the key in `path`: its text, trimmed.
    pub fn from_file(path: &Path) -> Result<Credentials, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::internal(format!(
                "cannot read --cluster-key-file {}: {e}",
                path.display()
            ))
        })?;
        let key = text.trim();
        if key.len() < MIN_KEY_BYTES {
            return Err(Error::internal(format!(
                "the cluster key in {} is {} bytes; it must be at least {MIN_KEY_BYTES} \
                 (make one with `eddy cluster-key > FILE`)",
                path.display(),
                key.len()
            )));
        }
        Credentials::from_key(key.as_bytes())
    }

    /// The credentials derived from `key`.
    pub fn from_key(key: &[u8]) -> Result<Credentials, Error> {
        let root = hmac::Key::new(hmac::HMAC_SHA256, key);
        let derive = |label: &[u8]| hmac::sign(&root, label);
        let key_pair = |label: &[u8]| -> Result<KeyPair, Error> {
            // PKCS#8 v1 of an Ed25519 seed (RFC 8410): a fixed prefix, then the seed.
            let mut der = vec![
                0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
                0x04, 0x20,
            ];
            der.extend_from_slice(derive(label).as_ref());
            KeyPair::from_pkcs8_der_and_sign_algo(&PrivatePkcs8KeyDer::from(der), &PKCS_ED25519)
                .map_err(Error::internal)
        };
        let ca_key = key_pair(b"eddy internal CA")?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(Error::internal)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.distinguished_name
            .push(DnType::CommonName, "Eddy cluster CA");
        let ca_cert = ca.self_signed(&ca_key).map_err(Error::internal)?;

        let node_key = key_pair(b"eddy internal node")?;
        let mut node =
            CertificateParams::new(vec![SERVER_NAME.to_owned()]).map_err(Error::internal)?;
        node.distinguished_name
            .push(DnType::CommonName, SERVER_NAME);
        let node_cert = node
            .signed_by(&node_key, &Issuer::new(ca, ca_key))
            .map_err(Error::internal)?;
        Ok(Credentials {
            ca_pem: ca_cert.pem(),
            cert_pem: node_cert.pem(),
            key_pem: node_key.serialize_pem(),
            heartbeats: hmac::Key::new(hmac::HMAC_SHA256, derive(b"eddy heartbeats").as_ref()),
        })
    }

    /// The internal service's TLS: this node's identity, and only clients
    /// the cluster's CA signed.
    pub fn server_tls(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .client_ca_root(Certificate::from_pem(&self.ca_pem))
    }

    /// A call to another node: it must prove the cluster's CA signed it,
    /// and so must this node.
    pub fn client_tls(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .domain_name(SERVER_NAME)
    }

    /// The signature of a heartbeat's bytes (hex).
    pub fn sign(&self, payload: &[u8]) -> String {
        common::hex::encode(hmac::sign(&self.heartbeats, payload).as_ref())
    }

    /// Whether `signature` is this cluster's signature of `payload`
    /// (compared in constant time).
    pub fn verify(&self, payload: &[u8], signature: &str) -> bool {
        common::hex::decode(signature)
            .is_some_and(|tag| hmac::verify(&self.heartbeats, payload, &tag).is_ok())
    }
}

/// A new random cluster key, as `eddy cluster-key` prints it: 64 hex digits.
pub fn new_key() -> String {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut key = [0u8; 32];
    let _ = SystemRandom::new().fill(&mut key);
    common::hex::encode(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_makes_one_cluster() {
        let a = Credentials::from_key(b"0123456789abcdef0123456789abcdef").unwrap();
        let b = Credentials::from_key(b"0123456789abcdef0123456789abcdef").unwrap();
        let other = Credentials::from_key(b"fedcba9876543210fedcba9876543210").unwrap();
        let sig = a.sign(b"beat");
        assert!(b.verify(b"beat", &sig), "the same key verifies");
        assert!(!b.verify(b"beat!", &sig), "another payload does not");
        assert!(!other.verify(b"beat", &sig), "another key does not");
        assert!(!b.verify(b"beat", "zz"));
        assert_eq!(a.key_pem, b.key_pem, "the same key pair on every node");
        assert_ne!(a.key_pem, other.key_pem);
        assert_eq!(new_key().len(), 64);
        assert_ne!(new_key(), new_key());
    }
}
