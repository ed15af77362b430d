//! SCRAM-SHA-256 verifiers in PostgreSQL's text form:
//! `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64).
//!
//! A verifier lets the node check a client's proof without ever holding the
//! password: `StoredKey = SHA256(HMAC(SaltedPassword, "Client Key"))`,
//! `ServerKey = HMAC(SaltedPassword, "Server Key")`, `SaltedPassword =
//! PBKDF2-HMAC-SHA256(password, salt, iterations)` (RFC 5802, RFC 7677).
//! The arithmetic is pgwire's; this module only makes, reads and prints
//! verifiers. `ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...'` (what psql's
//! `\password` sends) stores a verifier the client computed.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use pgwire::api::auth::sasl::scram::{gen_salted_password, ScramSecret};
use ring::rand::{SecureRandom, SystemRandom};

/// PostgreSQL's default `scram_iterations`.
pub const ITERATIONS: usize = 4096;

const PREFIX: &str = "SCRAM-SHA-256$";

/// A parsed verifier.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier {
    pub iterations: usize,
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// The verifier of `password` with a fresh random salt.
    pub fn new(password: &str) -> Verifier {
        let mut salt = vec![0u8; 16];
        // The system's random source does not fail on Linux; a zero salt
        // would still make a valid (if weaker) verifier.
        let _ = SystemRandom::new().fill(&mut salt);
        Verifier::with_salt(password, salt, ITERATIONS)
    }

    pub fn with_salt(password: &str, salt: Vec<u8>, iterations: usize) -> Verifier {
        let salted = gen_salted_password(password, &salt, iterations);
        match ScramSecret::verifier_from_salted_password(salt, salted, iterations) {
            ScramSecret::Verifier {
                salt,
                iterations,
                stored_key,
                server_key,
            } => Verifier {
                iterations,
                salt,
                stored_key,
                server_key,
            },
            // pgwire's constructor always makes a verifier.
            ScramSecret::SaltedPassword { salt, .. } => Verifier {
                iterations,
                salt,
                stored_key: Vec::new(),
                server_key: Vec::new(),
            },
        }
    }

    /// Reads a verifier in PostgreSQL's text form; `None` when `text` is not one.
    pub fn parse(text: &str) -> Option<Verifier> {
        let rest = text.strip_prefix(PREFIX)?;
        let (params, keys) = rest.split_once('$')?;
        let (iterations, salt) = params.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        let verifier = Verifier {
            iterations: iterations.parse().ok().filter(|&i| i > 0)?,
            salt: STANDARD.decode(salt).ok()?,
            stored_key: STANDARD.decode(stored).ok()?,
            server_key: STANDARD.decode(server).ok()?,
        };
        (verifier.stored_key.len() == 32 && verifier.server_key.len() == 32).then_some(verifier)
    }

    /// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
    pub fn text(&self) -> String {
        format!(
            "{PREFIX}{}:{}${}:{}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(&self.stored_key),
            STANDARD.encode(&self.server_key)
        )
    }

    /// What pgwire's SCRAM mechanism checks a client's proof against.
    pub fn secret(&self) -> ScramSecret {
        ScramSecret::Verifier {
            salt: self.salt.clone(),
            iterations: self.iterations,
            stored_key: self.stored_key.clone(),
            server_key: self.server_key.clone(),
        }
    }

    /// A verifier no password matches, for a user that does not exist or
    /// has no password: the exchange runs as for a real user (with a salt
    /// that is the same on every attempt for the same name, as
    /// PostgreSQL's mock salt), then fails, so a client cannot tell which
    /// user names exist.
    pub fn mock(user: &str, node_key: &[u8]) -> Verifier {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, node_key);
        let salt = ring::hmac::sign(&key, user.as_bytes()).as_ref()[..16].to_vec();
        let mut random = vec![0u8; 32];
        let _ = SystemRandom::new().fill(&mut random);
        Verifier {
            iterations: ITERATIONS,
            salt,
            stored_key: random.clone(),
            server_key: random,
        }
    }
}

/// The verifier a `PASSWORD '...'` clause stores: the client's own when it
/// sent one, else one computed here.
pub fn verifier_of(password: &str) -> String {
    match Verifier::parse(password) {
        Some(v) => v.text(),
        None => Verifier::new(password).text(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_postgresql() {
        // RFC 7677's example (user `user`, password `pencil`, this salt):
        // the keys PostgreSQL would store in pg_authid for it (checked with
        // Python's hashlib and hmac).
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let v = Verifier::with_salt("pencil", salt, 4096);
        assert_eq!(
            v.text(),
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
        assert_eq!(Verifier::parse(&v.text()), Some(v.clone()));
        assert_eq!(
            verifier_of(&v.text()),
            v.text(),
            "a client's verifier is kept"
        );
    }

    #[test]
    fn refuses_what_is_not_a_verifier() {
        for text in [
            "secret",
            "SCRAM-SHA-256$x:AAAA$AAAA:AAAA",
            "SCRAM-SHA-256$4096:AAAA$AAAA:AAAA",
            "SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
        ] {
            assert!(Verifier::parse(text).is_none(), "{text}");
        }
        let a = verifier_of("secret");
        assert!(a.starts_with(PREFIX) && !a.contains("secret"));
        assert_ne!(a, verifier_of("secret"), "salts differ");
        assert_eq!(
            Verifier::mock("nobody", b"k").salt,
            Verifier::mock("nobody", b"k").salt
        );
    }
}
