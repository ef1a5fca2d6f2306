//! Secrets at rest: the server's master key and what it seals.
//!
//! The server must know an application key and a binding's secret key to verify a signature, so
//! it cannot keep only a hash of them. They are stored sealed with XChaCha20-Poly1305 under a key
//! derived from the master key, with the record they belong to as associated data (a sealed
//! secret copied onto another row does not open). Page tokens are sealed the same way under a
//! second derived key. Every server sharing one database needs the same master key.

use crate::secret::Secret;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// What can go wrong with the master key or a sealed value.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The key file could not be read or written.
    #[error("master key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The key is not 32 bytes of base64.
    #[error("the master key must be 32 bytes, base64-encoded")]
    BadKey,
    /// A sealed value did not open: wrong key, altered bytes or the wrong record.
    #[error("a sealed value did not open (wrong master key or altered data)")]
    Open,
}

const NONCE_LEN: usize = 24;

/// The server's master key. `Debug` never prints it.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::thread_rng().fill_bytes(key.as_mut());
        MasterKey(key)
    }

    /// Reads a key from its base64 form.
    pub fn from_base64(text: &str) -> Result<Self, VaultError> {
        let bytes = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| VaultError::BadKey)?);
        let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| VaultError::BadKey)?;
        Ok(MasterKey(Zeroizing::new(arr)))
    }

    /// The key's base64 form, for writing it to its file.
    pub fn to_base64(&self) -> Secret {
        Secret::new(STANDARD.encode(self.0.as_ref()))
    }

    /// Reads the key from `path`, or, if the file does not exist, generates one and writes it
    /// there readable by its owner only (0600 on Unix). Returns the key and whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), VaultError> {
        let io = |source| VaultError::Io { path: path.display().to_string(), source };
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((Self::from_base64(&text)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                write_private(path, key.to_base64().expose().as_bytes()).map_err(io)?;
                Ok((key, true))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// A sub-key for one purpose: HMAC-SHA256(master, label).
    fn derive(&self, label: &str) -> Zeroizing<[u8; 32]> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_ref()).expect("HMAC takes any key length");
        mac.update(label.as_bytes());
        Zeroizing::new(mac.finalize().into_bytes().into())
    }
}

/// Writes a new file that only its owner can read, failing if it exists.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Seals and opens values under one derived key.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

impl Sealer {
    fn new(key: &[u8; 32]) -> Self {
        Sealer { cipher: XChaCha20Poly1305::new(key.into()) }
    }

    /// Encrypts and authenticates `plain`, bound to `context` (which is not stored).
    /// The result is nonce || ciphertext || tag.
    pub fn seal(&self, plain: &[u8], context: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad: context })
            .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`Sealer::seal`] made with the same `context`.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, VaultError> {
        if sealed.len() < NONCE_LEN {
            return Err(VaultError::Open);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad: context })
            .map_err(|_| VaultError::Open)
    }
}

/// The sealers a server uses, all derived from its master key.
#[derive(Clone, Debug)]
pub struct Vault {
    /// Seals application keys and binding secret keys at rest.
    pub secrets: Sealer,
    /// Seals page tokens.
    pub tokens: Sealer,
    /// Secrets opened already (see [`Vault::open_secret`]); shared by clones.
    opened: Arc<OpenedSecrets>,
}

/// Secrets opened already, by their sealed bytes and context. Every signed request opens two
/// (its binding's secret key and its application's key), each an XChaCha20-Poly1305
/// decryption: some 4% of a server's time under a page load. A sealed value is authenticated
/// with its context, so the same bytes and context always open to the same secret; a secret
/// rotated or re-sealed has other bytes. Held in memory like any secret the server uses
/// (zeroed when dropped), at most [`MAX_OPENED`] of them and each for [`KEEP_OPENED`] at most,
/// so that the secret of a binding revoked or deleted does not stay in memory for long.
#[derive(Default)]
struct OpenedSecrets(Mutex<Opened>);

/// Opened secrets by (sealed bytes, context), each with when it was opened.
type Opened = HashMap<(Vec<u8>, String), (Secret, Instant)>;

/// More opened secrets than this and the cache starts again empty.
const MAX_OPENED: usize = 4096;

/// How long an opened secret is kept from when it was opened.
const KEEP_OPENED: Duration = Duration::from_secs(600);

impl std::fmt::Debug for OpenedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpenedSecrets({} kept)", self.lock().len())
    }
}

impl OpenedSecrets {
    fn lock(&self) -> MutexGuard<'_, Opened> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Vault {
    /// Derives the sealers from the master key.
    pub fn new(master: &MasterKey) -> Self {
        Vault {
            secrets: Sealer::new(&master.derive("viewlog secrets at rest v1")),
            tokens: Sealer::new(&master.derive("viewlog page tokens v1")),
            opened: Arc::default(),
        }
    }

    /// Seals a secret string bound to its record (`context`, e.g. the access key).
    pub fn seal_secret(&self, secret: &Secret, context: &str) -> Vec<u8> {
        self.secrets.seal(secret.expose().as_bytes(), context.as_bytes())
    }

    /// Opens a sealed secret string; a value opened before is answered from memory.
    pub fn open_secret(&self, sealed: &[u8], context: &str) -> Result<Secret, VaultError> {
        self.open_secret_at(sealed, context, Instant::now())
    }

    /// [`Vault::open_secret`] at `now` (a secret opened more than [`KEEP_OPENED`] before is
    /// opened again).
    fn open_secret_at(&self, sealed: &[u8], context: &str, now: Instant) -> Result<Secret, VaultError> {
        let key = (sealed.to_vec(), context.to_owned());
        {
            let mut opened = self.opened.lock();
            match opened.get(&key) {
                Some((secret, at)) if now.saturating_duration_since(*at) < KEEP_OPENED => return Ok(secret.clone()),
                Some(_) => {
                    opened.remove(&key);
                }
                None => {}
            }
        }
        let plain = Zeroizing::new(self.secrets.open(sealed, context.as_bytes())?);
        let secret = std::str::from_utf8(&plain).map(|s| Secret::new(s.to_owned())).map_err(|_| VaultError::Open)?;
        let mut opened = self.opened.lock();
        if opened.len() >= MAX_OPENED {
            opened.clear();
        }
        opened.insert(key, (secret.clone(), now));
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secret_opens_only_with_same_key_and_context() {
        let key = MasterKey::generate();
        let vault = Vault::new(&key);
        let sealed = vault.seal_secret(&Secret::new("s3cret"), "ak1");
        assert_eq!(vault.open_secret(&sealed, "ak1").unwrap().expose(), "s3cret");
        assert!(vault.open_secret(&sealed, "ak2").is_err());
        assert!(Vault::new(&MasterKey::generate()).open_secret(&sealed, "ak1").is_err());
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert!(vault.open_secret(&altered, "ak1").is_err());
        assert!(vault.open_secret(&sealed[..10], "ak1").is_err());
    }

    /// Opening again answers from memory what opening answered, and only for the same bytes and
    /// context: another context, altered bytes or another master key still fail, also after
    /// the value was opened (and kept) once.
    #[test]
    fn opened_secrets_are_kept_only_for_their_bytes_and_context() {
        let vault = Vault::new(&MasterKey::generate());
        let sealed = vault.seal_secret(&Secret::new("s3cret"), "ak1");
        for _ in 0..3 {
            assert_eq!(vault.open_secret(&sealed, "ak1").unwrap().expose(), "s3cret");
        }
        assert!(vault.open_secret(&sealed, "ak2").is_err());
        let mut altered = sealed.clone();
        altered[NONCE_LEN] ^= 1;
        assert!(vault.open_secret(&altered, "ak1").is_err());
        assert!(Vault::new(&MasterKey::generate()).open_secret(&sealed, "ak1").is_err());
        let resealed = vault.seal_secret(&Secret::new("rotated"), "ak1");
        assert_eq!(vault.clone().open_secret(&resealed, "ak1").unwrap().expose(), "rotated");
        assert_eq!(vault.open_secret(&sealed, "ak1").unwrap().expose(), "s3cret");
        assert_eq!(vault.opened.lock().len(), 2, "clones share what they opened");
        assert!(!format!("{vault:?}").contains("s3cret"));
    }

    /// An opened secret is kept for KEEP_OPENED, then dropped and opened again.
    #[test]
    fn opened_secrets_are_kept_for_a_while_only() {
        let vault = Vault::new(&MasterKey::generate());
        let sealed = vault.seal_secret(&Secret::new("s3cret"), "ak1");
        let start = Instant::now();
        assert_eq!(vault.open_secret_at(&sealed, "ak1", start).unwrap().expose(), "s3cret");
        let kept_at = |vault: &Vault| vault.opened.lock().values().next().map(|(_, at)| *at);
        assert_eq!(kept_at(&vault), Some(start));
        let later = start + KEEP_OPENED - Duration::from_secs(1);
        vault.open_secret_at(&sealed, "ak1", later).unwrap();
        assert_eq!(kept_at(&vault), Some(start), "still the one opened first");
        let expired = start + KEEP_OPENED;
        assert_eq!(vault.open_secret_at(&sealed, "ak1", expired).unwrap().expose(), "s3cret");
        assert_eq!(kept_at(&vault), Some(expired), "opened again");
        assert_eq!(vault.opened.lock().len(), 1);
    }

    /// However many values are opened, at most MAX_OPENED are kept.
    #[test]
    fn opened_secrets_are_bounded() {
        let vault = Vault::new(&MasterKey::generate());
        let sealed = vault.seal_secret(&Secret::new("s"), "ak");
        for i in 0..MAX_OPENED + 10 {
            // The context is not part of the sealed bytes: each one is another key here.
            let context = format!("ak{i}");
            let sealed_i = vault.seal_secret(&Secret::new("s"), &context);
            assert!(vault.open_secret(&sealed_i, &context).is_ok());
            assert!(vault.opened.lock().len() <= MAX_OPENED);
        }
        assert!(vault.open_secret(&sealed, "ak").is_ok());
    }

    #[test]
    fn key_file_is_created_private_and_read_back() {
        let dir = std::env::temp_dir().join(format!("viewlog-vault-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("master.key");
        let (a, created) = MasterKey::load_or_create(&path).unwrap();
        assert!(created);
        let (b, created) = MasterKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(a.to_base64().expose(), b.to_base64().expose());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(format!("{a:?}").contains("redacted"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
