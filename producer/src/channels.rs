//! Who is submitting: each intake channel (爱山东 app, portal, service window, partner)
//! has its own API key, and the key a request carries decides the channel it is recorded
//! under.

use prh_common::application::Channel;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Keys shorter than this are refused at start: they could be guessed.
const MIN_KEY_LEN: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChannelKeyError {
    #[error("intake.api_keys: unknown channel `{0}`; the channels are app, portal, window and partner")]
    UnknownChannel(String),
    #[error("intake.api_keys.{0}: a key must be at least {MIN_KEY_LEN} characters")]
    TooShort(String),
    #[error("intake.api_keys: {0} and {1} have the same key")]
    Shared(String, String),
}

/// The configured keys, kept as SHA-256 digests.
#[derive(Debug, Clone, Default)]
pub struct ChannelKeys {
    keys: Vec<(Channel, [u8; 32])>,
}

/// Why a request is not let in.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Unknown,
}

impl ChannelKeys {
    pub fn from_settings(keys: &BTreeMap<String, String>) -> Result<Self, ChannelKeyError> {
        let mut out: Vec<(Channel, [u8; 32])> = Vec::new();
        for (name, key) in keys {
            let channel = Channel::KEYED
                .into_iter()
                .find(|c| c.as_str() == name)
                .ok_or_else(|| ChannelKeyError::UnknownChannel(name.clone()))?;
            if key.trim().len() < MIN_KEY_LEN {
                return Err(ChannelKeyError::TooShort(name.clone()));
            }
            let digest: [u8; 32] = Sha256::digest(key.trim().as_bytes()).into();
            if let Some((other, _)) = out.iter().find(|(_, d)| *d == digest) {
                return Err(ChannelKeyError::Shared(other.as_str().into(), name.clone()));
            }
            out.push((channel, digest));
        }
        Ok(Self { keys: out })
    }

    /// Whether submissions need a key at all.
    pub fn required(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The channel of a request carrying `key` (the `X-Api-Key` header).
    pub fn identify(&self, key: Option<&str>) -> Result<Channel, Refusal> {
        if !self.required() {
            return Ok(Channel::Http);
        }
        let key = key.map(str::trim).filter(|k| !k.is_empty()).ok_or(Refusal::Missing)?;
        // Digests of equal length are compared, so the time taken says nothing about how
        // much of a guessed key was right.
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        self.keys
            .iter()
            .find(|(_, d)| *d == digest)
            .map(|(c, _)| *c)
            .ok_or(Refusal::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_names_its_channel_and_bad_configurations_are_refused() {
        let keys = |pairs: &[(&str, &str)]| {
            ChannelKeys::from_settings(&pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect())
        };
        let set = keys(&[("portal", "portal-key-0123456789"), ("window", "window-key-0123456789")]).unwrap();
        assert_eq!(set.identify(Some("window-key-0123456789")), Ok(Channel::Window));
        assert_eq!(set.identify(Some(" portal-key-0123456789 ")), Ok(Channel::Portal));
        assert_eq!(set.identify(Some("window-key-012345678")), Err(Refusal::Unknown));
        assert_eq!(set.identify(None), Err(Refusal::Missing));
        assert_eq!(keys(&[]).unwrap().identify(None), Ok(Channel::Http));

        assert_eq!(
            keys(&[("kiosk", "0123456789abcdef")]).unwrap_err(),
            ChannelKeyError::UnknownChannel("kiosk".into())
        );
        assert_eq!(
            keys(&[("app", "short")]).unwrap_err(),
            ChannelKeyError::TooShort("app".into())
        );
        assert_eq!(
            keys(&[("app", "0123456789abcdef"), ("partner", "0123456789abcdef")]).unwrap_err(),
            ChannelKeyError::Shared("app".into(), "partner".into())
        );
    }
}
