//! TLS on the Postgres port: rustls on ring, from PEM files.
//!
//! `--tls-cert` and `--tls-key` turn TLS on: a client that asks for it
//! (`sslmode=require`, `verify-ca`, `verify-full`) gets it, including
//! PostgreSQL 17's direct TLS (ALPN `postgresql`). `--tls-client-ca` also
//! asks every TLS client for a certificate signed by that CA and refuses
//! those without one. `--tls-required` (checked at startup, see
//! `pgwire::connection`) refuses clients that did not negotiate TLS.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

use crate::error::Error;

/// The Postgres port's TLS settings, as `eddy serve` was given them.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
    pub required: bool,
}

/// The ALPN protocol of PostgreSQL's direct TLS.
const ALPN: &[u8] = b"postgresql";

impl TlsFiles {
    /// The acceptor for the Postgres port; `None` without a certificate.
    /// Fails (naming the file and what to change) on unreadable or
    /// mismatched files, and on `--tls-required` without a certificate.
    pub fn acceptor(&self) -> Result<Option<TlsAcceptor>, Error> {
        let (cert, key) = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => (cert, key),
            (None, None) if self.required || self.client_ca.is_some() => {
                return Err(config_error(
                    "--tls-required and --tls-client-ca need a server certificate",
                    "give --tls-cert FILE and --tls-key FILE (PEM)",
                ))
            }
            (None, None) => return Ok(None),
            _ => {
                return Err(config_error(
                    "--tls-cert and --tls-key go together",
                    "give both, or neither",
                ))
            }
        };
        let chain = certificates(cert)?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
            config_error(
                &format!("cannot read a private key from {}: {e}", key.display()),
                "give --tls-key a PEM file holding the certificate's private key",
            )
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(Error::internal)?;
        let builder = match &self.client_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for c in certificates(ca)? {
                    roots.add(c).map_err(|e| {
                        config_error(
                            &format!("{} is not a usable CA certificate: {e}", ca.display()),
                            "give --tls-client-ca the PEM certificate of the CA that signs client certificates",
                        )
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(Error::internal)?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(chain, key).map_err(|e| {
            config_error(
                &format!("the TLS certificate and key do not make a server identity: {e}"),
                "check that --tls-key is the private key of --tls-cert's certificate",
            )
        })?;
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(Some(TlsAcceptor::from(Arc::new(config))))
    }
}

/// Every certificate of a PEM file, at least one.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let unreadable = |e: &dyn std::fmt::Display| {
        config_error(
            &format!("cannot read certificates from {}: {e}", path.display()),
            "give a PEM file of one or more certificates (-----BEGIN CERTIFICATE-----)",
        )
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| unreadable(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(&e))?;
    if certs.is_empty() {
        return Err(unreadable(&"no certificate in the file"));
    }
    Ok(certs)
}

fn config_error(message: &str, hint: &str) -> Error {
    Error::Query {
        code: common::SqlState::InvalidParameterValue,
        message: message.to_owned(),
        hint: Some(format!("{hint}.")),
    }
}
