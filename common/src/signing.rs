//! Ed25519 keys: the issuing authority's, which signs certificates, and each department's,
//! which signs its findings; and the public keys that verify them. Keys live in files as
//! base64; a key id names each public key, so keys can be rotated.

use crate::department::Department;
use base64::{Engine, engine::general_purpose::STANDARD as B64};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write key file {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("key file {path} does not hold a base64 Ed25519 key of 32 bytes")]
    Malformed { path: PathBuf },
}

/// A signing key with its key id: the authority's or a department's.
pub struct KeyPair {
    key: SigningKey,
    key_id: String,
}

impl KeyPair {
    /// Loads the key at `path`, or generates one there (with `<path>.pub` beside it) on
    /// first run.
    pub fn load_or_generate(path: &Path) -> Result<Self, KeyError> {
        if path.exists() {
            let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
                path: path.into(),
                source,
            })?;
            let bytes: [u8; 32] = B64
                .decode(text.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| KeyError::Malformed { path: path.into() })?;
            return Ok(Self::from_key(SigningKey::from_bytes(&bytes)));
        }
        let signer = Self::from_key(SigningKey::generate(&mut rand::rng()));
        let write_err = |source| KeyError::Write {
            path: path.into(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        // Written whole to a private temporary file, then linked into place: when two
        // collectors start at once on a fresh volume, one key wins and the other process
        // loads it; nobody ever reads a half-written key.
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::now_v7().simple()));
        write_private(&tmp, &(B64.encode(signer.key.to_bytes()) + "\n")).map_err(write_err)?;
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                let public = public_key_path(path);
                std::fs::write(&public, B64.encode(signer.key.verifying_key().to_bytes()) + "\n").map_err(
                    |source| KeyError::Write {
                        path: public.clone(),
                        source,
                    },
                )?;
                Ok(signer)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load_or_generate(path),
            Err(e) => Err(write_err(e)),
        }
    }

    /// A key given as base64 text (from the environment, say) instead of a file.
    pub fn from_base64(text: &str) -> Option<Self> {
        let bytes: [u8; 32] = B64.decode(text.trim()).ok()?.try_into().ok()?;
        Some(Self::from_key(SigningKey::from_bytes(&bytes)))
    }

    pub fn from_key(key: SigningKey) -> Self {
        let key_id = key_id_of(&key.verifying_key());
        Self { key, key_id }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    pub fn sign(&self, message: &[u8]) -> String {
        B64.encode(self.key.sign(message).to_bytes())
    }
}

/// Writes a new file that only its owner can read, from the moment it exists (keys,
/// credentials).
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

/// Where the public half of a key file is kept.
pub fn public_key_path(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// The first 8 bytes of the SHA-256 of the public key, in hex.
pub fn key_id_of(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// Public keys by key id: what a verifier trusts.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: BTreeMap<String, VerifyingKey>,
}

impl KeyRing {
    pub fn add(&mut self, key: VerifyingKey) {
        self.keys.insert(key_id_of(&key), key);
    }

    /// Adds a base64 public key, as served by `GET /v1/keys` or kept in a `.pub` file.
    pub fn add_base64(&mut self, text: &str) -> Option<String> {
        let bytes: [u8; 32] = B64.decode(text.trim()).ok()?.try_into().ok()?;
        let key = VerifyingKey::from_bytes(&bytes).ok()?;
        let id = key_id_of(&key);
        self.keys.insert(id.clone(), key);
        Some(id)
    }

    pub fn add_file(&mut self, path: &Path) -> Result<String, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.into(),
            source,
        })?;
        self.add_base64(&text)
            .ok_or_else(|| KeyError::Malformed { path: path.into() })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn public_keys(&self) -> impl Iterator<Item = (&String, String)> {
        self.keys.iter().map(|(id, k)| (id, B64.encode(k.as_bytes())))
    }

    /// Checks a base64 signature over `message` by the key `key_id`.
    pub fn verify(&self, key_id: &str, message: &[u8], signature_b64: &str) -> Result<(), SignatureError> {
        self.claim(key_id, message, signature_b64)?.check()
    }

    /// The key `key_id` and the base64 signature, parsed, ready to be checked (alone or
    /// with others, [`check_all`]).
    pub fn claim<'a>(
        &'a self,
        key_id: &str,
        message: &'a [u8],
        signature_b64: &str,
    ) -> Result<Claim<'a>, SignatureError> {
        let key = self
            .keys
            .get(key_id)
            .ok_or_else(|| SignatureError::UnknownKey(key_id.to_owned()))?;
        let bytes = B64.decode(signature_b64).map_err(|_| SignatureError::Malformed)?;
        let signature = Signature::from_slice(&bytes).map_err(|_| SignatureError::Malformed)?;
        Ok(Claim {
            key,
            message,
            signature,
        })
    }
}

/// That `key` signed `message` with `signature`: not yet checked.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    key: &'a VerifyingKey,
    message: &'a [u8],
    signature: Signature,
}

impl Claim<'_> {
    /// Checks this one claim.
    pub fn check(&self) -> Result<(), SignatureError> {
        self.key
            .verify_strict(self.message, &self.signature)
            .map_err(|_| SignatureError::Mismatch)
    }
}

/// Checks every claim, one result each. They are first tried together in one batch
/// equation (ed25519-dalek's `verify_batch`), about half the work per signature of
/// checking each on its own; only if the batch fails is each checked alone, to tell which.
///
/// The batch does not reject small-order points as `verify_strict` does; a signature
/// built around one can only be made with the key itself, so a batch never accepts a
/// signature that the key's holder did not make.
pub fn check_all(claims: &[Claim<'_>]) -> Vec<Result<(), SignatureError>> {
    if claims.len() > 1 {
        let messages: Vec<&[u8]> = claims.iter().map(|c| c.message).collect();
        let signatures: Vec<Signature> = claims.iter().map(|c| c.signature).collect();
        let keys: Vec<VerifyingKey> = claims.iter().map(|c| *c.key).collect();
        if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
            return vec![Ok(()); claims.len()];
        }
    }
    claims.iter().map(Claim::check).collect()
}

/// The departments' public keys: which keys may sign which department's findings. A
/// department's trusted keys are the `*.pub` files in its folder, `<dir>/<department>/`;
/// its current key pair is `current.key` there. Rotating: add the new public key, switch
/// the department to the new key, remove the old public key once its findings are in.
#[derive(Debug, Clone, Default)]
pub struct DepartmentKeys {
    rings: BTreeMap<Department, KeyRing>,
}

impl DepartmentKeys {
    /// Reads every department's public keys under `dir`; a missing folder trusts nobody.
    pub fn load(dir: &Path) -> Result<Self, KeyError> {
        let mut rings = BTreeMap::new();
        for department in Department::ALL {
            let folder = dir.join(department.as_str());
            let mut ring = KeyRing::default();
            let entries = match std::fs::read_dir(&folder) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(KeyError::Read { path: folder, source }),
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "pub") {
                    ring.add_file(&path)?;
                }
            }
            rings.insert(department, ring);
        }
        Ok(Self { rings })
    }

    /// The key file a department signs with, under `dir`.
    pub fn key_file(dir: &Path, department: Department) -> PathBuf {
        dir.join(department.as_str()).join("current.key")
    }

    pub fn trust(&mut self, department: Department, key: VerifyingKey) {
        self.rings.entry(department).or_default().add(key);
    }

    /// Whether `department` has a trusted key `key_id`.
    pub fn knows(&self, department: Department, key_id: &str) -> bool {
        self.rings
            .get(&department)
            .is_some_and(|ring| ring.keys.contains_key(key_id))
    }

    /// `department`'s key `key_id` and the parsed signature, ready to be checked. A key of
    /// another department is unknown here, so nobody can sign for somebody else.
    pub fn claim<'a>(
        &'a self,
        department: Department,
        key_id: &str,
        message: &'a [u8],
        signature_b64: &str,
    ) -> Result<Claim<'a>, SignatureError> {
        self.rings
            .get(&department)
            .ok_or_else(|| SignatureError::UnknownKey(key_id.to_owned()))?
            .claim(key_id, message, signature_b64)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no trusted public key of the signer has id {0}")]
    UnknownKey(String),
    #[error("the signature is not 64 bytes of base64")]
    Malformed,
    #[error("the signature does not match the signed content")]
    Mismatch,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_reload_and_verify() {
        let dir = tempfile_dir();
        let path = dir.join("signing.key");
        let signer = KeyPair::load_or_generate(&path).unwrap();
        let again = KeyPair::load_or_generate(&path).unwrap();
        assert_eq!(signer.key_id(), again.key_id());

        let mut ring = KeyRing::default();
        assert_eq!(ring.add_file(&public_key_path(&path)).unwrap(), signer.key_id());
        let sig = signer.sign(b"hello");
        assert_eq!(ring.verify(signer.key_id(), b"hello", &sig), Ok(()));
        assert_eq!(
            ring.verify(signer.key_id(), b"hellp", &sig),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            ring.verify("00", b"hello", &sig),
            Err(SignatureError::UnknownKey("00".into()))
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the private key is readable by others: {mode:o}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_batch_accepts_good_signatures_and_tells_which_are_bad() {
        let signers: Vec<KeyPair> = (0..3u8)
            .map(|i| KeyPair::from_key(SigningKey::from_bytes(&[i + 1; 32])))
            .collect();
        let mut ring = KeyRing::default();
        for s in &signers {
            ring.add(s.verifying_key());
        }
        let messages: Vec<Vec<u8>> = (0..8).map(|i| format!("finding {i}").into_bytes()).collect();
        let mut signatures: Vec<String> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| signers[i % 3].sign(m))
            .collect();
        let claims = |sigs: &[String]| -> Vec<Result<(), SignatureError>> {
            let parsed: Vec<Claim<'_>> = messages
                .iter()
                .zip(sigs)
                .enumerate()
                .map(|(i, (m, s))| ring.claim(signers[i % 3].key_id(), m, s).unwrap())
                .collect();
            check_all(&parsed)
        };
        assert_eq!(claims(&signatures), vec![Ok(()); 8]);

        // One signature over another message, one by another department's key.
        signatures[2] = signers[2].sign(b"something else");
        signatures[5] = signers[0].sign(&messages[5]);
        let mut expected = vec![Ok(()); 8];
        expected[2] = Err(SignatureError::Mismatch);
        expected[5] = Err(SignatureError::Mismatch);
        assert_eq!(claims(&signatures), expected);
    }

    #[test]
    fn collectors_starting_together_share_one_key() {
        let dir = tempfile_dir();
        let path = dir.join("signing.key");
        let ids: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| KeyPair::load_or_generate(&path).unwrap().key_id().to_owned()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
        let mut ring = KeyRing::default();
        assert_eq!(ring.add_file(&public_key_path(&path)).unwrap(), ids[0]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("prh-keys-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
