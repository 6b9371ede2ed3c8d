//! Roles: who may log in, who is a superuser, and each role's SCRAM-SHA-256 verifier.
//!
//! A role is stored under `Cr` + its name (docs/format.md). Passwords are never stored: a
//! password becomes a verifier in PostgreSQL's format,
//! `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64), from which the
//! server checks a client's SCRAM proof without being able to log in itself. A password
//! given already in that form (as pg_dump writes it) is stored as given.
//!
//! The bootstrap superuser `bulwark` exists in every database, even before anything is
//! stored for it; it cannot be dropped.

use crate::catalog::keys;
use crate::error::{codes, Error, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::rand::SecureRandom;
use std::num::NonZeroU32;
use txn::Txn;

/// The role every database has.
pub const BOOTSTRAP_SUPERUSER: &str = "bulwark";
/// PBKDF2 iterations of new verifiers (PostgreSQL's scram_iterations default).
pub const SCRAM_ITERATIONS: u32 = 4096;
/// Bytes of salt of new verifiers.
const SALT_BYTES: usize = 16;
/// Format version of a stored role.
const ROLE_FORMAT: u8 = 1;

/// A role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// Name.
    pub name: String,
    /// SUPERUSER.
    pub superuser: bool,
    /// LOGIN.
    pub login: bool,
    /// The SCRAM-SHA-256 verifier, if the role has a password.
    pub verifier: Option<String>,
}

/// A verifier's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// Salt.
    pub salt: Vec<u8>,
    /// SHA-256(ClientKey).
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: Vec<u8>,
}

fn corrupt(what: &str) -> Error {
    Error::new("XX001", format!("stored role is corrupt: {what}"))
}

fn encode(r: &Role) -> Vec<u8> {
    let mut out = vec![ROLE_FORMAT, u8::from(r.superuser), u8::from(r.login)];
    if let Some(v) = &r.verifier {
        out.extend_from_slice(v.as_bytes());
    }
    out
}

fn decode(name: &str, bytes: &[u8]) -> Result<Role> {
    match bytes {
        [ROLE_FORMAT, superuser @ (0 | 1), login @ (0 | 1), rest @ ..] => Ok(Role {
            name: name.to_string(),
            superuser: *superuser == 1,
            login: *login == 1,
            verifier: if rest.is_empty() {
                None
            } else {
                Some(String::from_utf8(rest.to_vec()).map_err(|_| corrupt("verifier is not UTF-8"))?)
            },
        }),
        _ => Err(corrupt(name)),
    }
}

/// The role `name` as `txn` sees it (the bootstrap superuser exists even if never stored).
pub fn get(txn: &mut Txn, name: &str) -> Result<Option<Role>> {
    match txn.get(&keys::role(name))? {
        Some(bytes) => decode(name, &bytes).map(Some),
        None if name == BOOTSTRAP_SUPERUSER => {
            Ok(Some(Role { name: name.into(), superuser: true, login: true, verifier: None }))
        }
        None => Ok(None),
    }
}

/// Writes a role.
pub fn put(txn: &mut Txn, role: &Role) -> Result<()> {
    txn.put(&keys::role(&role.name), &encode(role))?;
    Ok(())
}

/// Removes a role.
pub fn delete(txn: &mut Txn, name: &str) -> Result<()> {
    txn.delete(&keys::role(name))?;
    Ok(())
}

/// Every role, sorted by name (the bootstrap superuser included).
pub fn all(txn: &mut Txn) -> Result<Vec<Role>> {
    use std::ops::Bound;
    let end = storage::keycode::prefix_end(keys::ROLES).expect("prefix has an end");
    let mut roles = Vec::new();
    for (k, v) in txn.scan(Bound::Included(keys::ROLES.to_vec()), Bound::Excluded(end), false, usize::MAX)? {
        let name = String::from_utf8_lossy(&k[keys::ROLES.len()..]).into_owned();
        roles.push(decode(&name, &v)?);
    }
    if !roles.iter().any(|r| r.name == BOOTSTRAP_SUPERUSER) {
        roles.push(get(txn, BOOTSTRAP_SUPERUSER)?.expect("the bootstrap superuser always exists"));
        roles.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(roles)
}

/// The verifier to store for `password`: as given if it is a SCRAM-SHA-256 verifier, else
/// derived with a new random salt.
pub fn verifier_for(password: &str) -> Result<String> {
    if password.starts_with("SCRAM-SHA-256$") {
        parse_verifier(password)
            .ok_or_else(|| Error::new(codes::INVALID_PARAMETER_VALUE, "malformed SCRAM-SHA-256 verifier"))?;
        return Ok(password.to_string());
    }
    if password.is_empty() {
        return Err(Error::new(codes::INVALID_PARAMETER_VALUE, "empty password"));
    }
    let mut salt = [0u8; SALT_BYTES];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| Error::new(codes::INTERNAL_ERROR, "no randomness for a password salt"))?;
    Ok(derive_verifier(password, &salt, SCRAM_ITERATIONS))
}

/// The verifier of `password` with `salt` and `iterations` (RFC 5802, SHA-256).
pub fn derive_verifier(password: &str, salt: &[u8], iterations: u32) -> String {
    let mut salted = [0u8; 32];
    let iters = NonZeroU32::new(iterations.max(1)).expect("at least one iteration");
    ring::pbkdf2::derive(ring::pbkdf2::PBKDF2_HMAC_SHA256, iters, salt, password.as_bytes(), &mut salted);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &salted);
    let client_key = ring::hmac::sign(&key, b"Client Key");
    let stored_key = ring::digest::digest(&ring::digest::SHA256, client_key.as_ref());
    let server_key = ring::hmac::sign(&key, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key.as_ref()),
        STANDARD.encode(server_key.as_ref())
    )
}

/// Splits a stored verifier into its parts.
pub fn parse_verifier(v: &str) -> Option<Verifier> {
    let rest = v.strip_prefix("SCRAM-SHA-256$")?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifiers_round_trip() {
        // (libpq's client proof is checked against these end to end in the server tests.)
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let v = derive_verifier("pencil", &salt, 4096);
        let parts = parse_verifier(&v).unwrap();
        assert_eq!(parts.iterations, 4096);
        assert_eq!(parts.salt, salt);
        assert_eq!(derive_verifier("pencil", &salt, 4096), v, "deterministic for one salt");
        assert_ne!(derive_verifier("pencil!", &salt, 4096), v);
        assert_eq!(verifier_for(&v).unwrap(), v, "a verifier is stored as given");
        assert!(verifier_for("SCRAM-SHA-256$junk").is_err());
        let fresh = verifier_for("pencil").unwrap();
        assert_ne!(fresh, v, "a new salt each time");
        assert!(parse_verifier(&fresh).is_some());
    }

    #[test]
    fn roles_encode_and_decode() {
        let r = Role { name: "app".into(), superuser: false, login: true, verifier: Some("SCRAM-SHA-256$x".into()) };
        assert_eq!(decode("app", &encode(&r)).unwrap(), r);
        let bare = Role { verifier: None, ..r };
        assert_eq!(decode("app", &encode(&bare)).unwrap(), bare);
        assert!(decode("app", &[9, 0, 0]).is_err());
    }
}
