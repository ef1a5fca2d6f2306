//! Generating keys and hashing passwords.

use crate::secret::Secret;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
}

/// A new public application id (a UUID, as Mimecast issues them).
pub fn new_app_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A new application key (a UUID, as Mimecast issues them).
pub fn new_app_key() -> Secret {
    Secret::new(uuid::Uuid::new_v4().to_string())
}

/// A new access key: 48 random bytes, URL-safe base64 (64 characters).
pub fn new_access_key() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<48>())
}

/// A new secret key: 64 random bytes, standard base64, as the signature scheme decodes it.
pub fn new_secret_key() -> Secret {
    Secret::new(STANDARD.encode(random_bytes::<64>()))
}

/// Hashes a password with argon2id and a random salt (a PHC string).
pub fn hash_password(password: &Secret) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Checks a password against a PHC string; `false` for a malformed hash too.
pub fn verify_password(password: &Secret, hash: &str) -> bool {
    PasswordHash::new(hash)
        .is_ok_and(|parsed| Argon2::default().verify_password(password.expose().as_bytes(), &parsed).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hash_verifies_only_the_same_password() {
        let hash = hash_password(&Secret::new("correct horse")).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&Secret::new("correct horse"), &hash));
        assert!(!verify_password(&Secret::new("wrong"), &hash));
        assert!(!verify_password(&Secret::new("correct horse"), "not a hash"));
    }

    #[test]
    fn keys_are_random_and_decodable() {
        assert_ne!(new_access_key(), new_access_key());
        let secret = new_secret_key();
        assert_eq!(viewlog_protocol::signing::decode_secret_key(secret.expose()).unwrap().len(), 64);
        assert_eq!(new_access_key().len(), 64);
    }
}
