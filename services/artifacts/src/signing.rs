//! HMAC-SHA256 signed URLs of the local-disk store: bound to one object, one method and
//! an expiry time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use verdict_contracts::artifacts::BLOB_PATH_PREFIX;

type HmacSha256 = Hmac<Sha256>;

/// Why a signed URL is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature does not match")]
    Invalid,
    #[error("the URL has expired")]
    Expired,
}

/// Signs and checks URLs with the service's secret.
#[derive(Clone)]
pub struct UrlSigner {
    /// HMAC keyed with the secret, cloned for each URL.
    keyed: HmacSha256,
}

impl UrlSigner {
    /// `None` only for a key HMAC refuses, which no key is (HMAC takes any length).
    pub fn new(key: &[u8]) -> Option<Self> {
        HmacSha256::new_from_slice(key)
            .ok()
            .map(|keyed| Self { keyed })
    }

    fn mac(&self, method: &str, object: &str, expires: i64) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(method.as_bytes());
        mac.update(b"\n");
        mac.update(object.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// `/blobs/<object>?expires=<unix seconds>&sig=<base64url HMAC>`.
    pub fn url(&self, method: &str, object: &str, expires: i64) -> String {
        let signature =
            URL_SAFE_NO_PAD.encode(self.mac(method, object, expires).finalize().into_bytes());
        format!("{BLOB_PATH_PREFIX}{object}?expires={expires}&sig={signature}")
    }

    /// Checks a URL's signature (in constant time) and then its expiry.
    pub fn verify(
        &self,
        method: &str,
        object: &str,
        expires: i64,
        signature: &str,
        now: i64,
    ) -> Result<(), SignatureError> {
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| SignatureError::Invalid)?;
        self.mac(method, object, expires)
            .verify_slice(&signature)
            .map_err(|_| SignatureError::Invalid)?;
        if now > expires {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> (String, i64, String) {
        let (path, query) = url.split_once('?').unwrap();
        let object = path.trim_start_matches(BLOB_PATH_PREFIX).to_owned();
        let mut expires = 0;
        let mut sig = String::new();
        for pair in query.split('&') {
            match pair.split_once('=').unwrap() {
                ("expires", v) => expires = v.parse().unwrap(),
                ("sig", v) => sig = v.to_owned(),
                _ => {}
            }
        }
        (object, expires, sig)
    }

    #[test]
    fn a_signed_url_verifies_for_its_object_and_method_until_it_expires() {
        let signer = UrlSigner::new(b"secret").unwrap();
        let (object, expires, sig) = parts(&signer.url("PUT", "obj-1", 1000));
        assert_eq!(signer.verify("PUT", &object, expires, &sig, 999), Ok(()));
        assert_eq!(
            signer.verify("PUT", &object, expires, &sig, 1001),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            signer.verify("GET", &object, expires, &sig, 999),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            signer.verify("PUT", "obj-2", expires, &sig, 999),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            signer.verify("PUT", &object, expires + 1000, &sig, 999),
            Err(SignatureError::Invalid)
        );
        let other = UrlSigner::new(b"other").unwrap();
        assert_eq!(
            other.verify("PUT", &object, expires, &sig, 999),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            signer.verify("PUT", &object, expires, "!!", 999),
            Err(SignatureError::Invalid)
        );
    }
}
