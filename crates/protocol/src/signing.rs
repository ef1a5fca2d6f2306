//! The API 1.0 request signature (PROTOCOL §3).
//!
//! `signature = base64(HMAC-SHA1(key = base64-decode(secretKey),
//! message = "{x-mc-date}:{x-mc-req-id}:{uri}:{applicationKey}"))`

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::{Choice, ConstantTimeEq};

/// Standard alphabet; padding optional and non-zero trailing bits tolerated, as Python's
/// `base64.b64decode` and .NET's `Convert.FromBase64String` tolerate them.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// A secret key that is not valid base64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the secret key is not valid base64")]
pub struct BadSecretKey;

/// Decodes a base64 secret key (standard alphabet, padding optional). Surrounding whitespace is
/// ignored.
pub fn decode_secret_key(secret_key: &str) -> Result<Vec<u8>, BadSecretKey> {
    LENIENT_BASE64.decode(secret_key.trim()).map_err(|_| BadSecretKey)
}

/// Computes the base64 signature of one request with an already decoded secret key.
pub fn signature(secret: &[u8], date: &str, request_id: &str, uri: &str, app_key: &str) -> String {
    STANDARD.encode(raw_signature(secret, date, request_id, uri, app_key))
}

fn raw_signature(secret: &[u8], date: &str, request_id: &str, uri: &str, app_key: &str) -> [u8; 20] {
    // HMAC takes a key of any length (longer keys are hashed first), so this cannot fail.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    for (i, part) in [date, request_id, uri, app_key].into_iter().enumerate() {
        if i > 0 {
            mac.update(b":");
        }
        mac.update(part.as_bytes());
    }
    mac.finalize().into_bytes().into()
}

/// Computes the base64 signature of one request from the base64 secret key.
pub fn sign(secret_key: &str, date: &str, request_id: &str, uri: &str, app_key: &str) -> Result<String, BadSecretKey> {
    let secret = decode_secret_key(secret_key)?;
    Ok(signature(&secret, date, request_id, uri, app_key))
}

/// Checks a presented signature against each candidate URI (the path, the absolute URL…), in
/// constant time for each comparison. Surrounding whitespace in `presented` is ignored.
///
/// Every candidate is computed and compared, whichever matches, so the time taken does not tell
/// which one did. No candidate means no match.
pub fn verify(secret: &[u8], date: &str, request_id: &str, uris: &[&str], app_key: &str, presented: &str) -> bool {
    let presented = presented.trim().as_bytes();
    let mut matched = Choice::from(0);
    for uri in uris {
        let expected = signature(secret, date, request_id, uri, app_key);
        matched |= expected.as_bytes().ct_eq(presented);
    }
    matched.into()
}

/// The two parts of an `Authorization: MC {accessKey}:{signature}` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McAuthorization<'a> {
    /// The access key.
    pub access_key: &'a str,
    /// The base64 signature, trimmed.
    pub signature: &'a str,
}

/// Reads `MC {accessKey}:{signature}`; tolerates whitespace after the colon (PowerShell) and
/// around the value; the scheme is matched case-insensitively. `None` if it is not that form
/// or either part is empty.
///
/// The value is split at its first colon (access keys hold none). Whitespace inside the access
/// key or the signature makes it not that form either.
pub fn parse_authorization(value: &str) -> Option<McAuthorization<'_>> {
    let (scheme, rest) = value.trim().split_once(|c: char| c.is_ascii_whitespace())?;
    if !scheme.eq_ignore_ascii_case("MC") {
        return None;
    }
    let (access_key, signature) = rest.split_once(':')?;
    let (access_key, signature) = (access_key.trim(), signature.trim());
    let has_space = |s: &str| s.contains(|c: char| c.is_whitespace());
    if access_key.is_empty() || signature.is_empty() || has_space(access_key) || has_space(signature) {
        return None;
    }
    Some(McAuthorization { access_key, signature })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET_KEY: &str = "U2VjcmV0S2V5";
    const APP_KEY: &str = "ApplicationKey";
    const DATE: &str = "Tue, 24 Nov 2015 12:50:11 UTC";
    const REQ_ID: &str = "8578FCFC-A305-4D9A-99CB-F4D5ECEFE297";
    const PATH: &str = "/api/archive/get-view-logs";
    const EXPECTED: &str = "zKULT7yH+YW/AjaEWbCoi8pYXxo=";
    /// The same request signed over the absolute URL (computed with Python's hmac module).
    const ABSOLUTE: &str = "https://eu-api.mimecast.com/api/archive/get-view-logs";
    const EXPECTED_ABSOLUTE: &str = "yE2M9iNOS9SX0r7d/7B92p5jJjg=";

    fn secret() -> Vec<u8> {
        decode_secret_key(SECRET_KEY).expect("valid base64")
    }

    #[test]
    fn sign_produces_the_test_vector() {
        assert_eq!(decode_secret_key(SECRET_KEY), Ok(b"SecretKey".to_vec()));
        assert_eq!(sign(SECRET_KEY, DATE, REQ_ID, PATH, APP_KEY).as_deref(), Ok(EXPECTED));
        assert_eq!(signature(&secret(), DATE, REQ_ID, PATH, APP_KEY), EXPECTED);
        assert_eq!(sign(SECRET_KEY, DATE, REQ_ID, ABSOLUTE, APP_KEY).as_deref(), Ok(EXPECTED_ABSOLUTE));
    }

    #[test]
    fn verify_accepts_the_test_vector() {
        assert!(verify(&secret(), DATE, REQ_ID, &[PATH], APP_KEY, EXPECTED));
        assert!(verify(&secret(), DATE, REQ_ID, &[PATH], APP_KEY, &format!(" {EXPECTED}\t\n")));
        assert!(verify(&secret(), DATE, REQ_ID, &[ABSOLUTE, PATH], APP_KEY, EXPECTED));
        assert!(verify(&secret(), DATE, REQ_ID, &[PATH, ABSOLUTE], APP_KEY, EXPECTED_ABSOLUTE));
    }

    #[test]
    fn verify_rejects_any_change() {
        let s = secret();
        // Every one-character change of the signature.
        for i in 0..EXPECTED.len() {
            let mut bytes = EXPECTED.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).expect("ASCII");
            assert!(!verify(&s, DATE, REQ_ID, &[PATH], APP_KEY, &changed), "{changed}");
        }
        assert!(!verify(&s, DATE, REQ_ID, &[PATH], APP_KEY, &EXPECTED[..EXPECTED.len() - 1]));
        assert!(!verify(&s, DATE, REQ_ID, &[PATH], APP_KEY, &format!("{EXPECTED}=")));
        assert!(!verify(&s, DATE, REQ_ID, &[PATH], APP_KEY, ""));
        assert!(!verify(&s, "Tue, 24 Nov 2015 12:50:12 UTC", REQ_ID, &[PATH], APP_KEY, EXPECTED));
        assert!(!verify(&s, "Tue, 24 Nov 2015 12:50:11 GMT", REQ_ID, &[PATH], APP_KEY, EXPECTED));
        assert!(!verify(&s, DATE, "8578FCFC-A305-4D9A-99CB-F4D5ECEFE298", &[PATH], APP_KEY, EXPECTED));
        assert!(!verify(&s, DATE, REQ_ID, &["/api/archive/get-search-logs"], APP_KEY, EXPECTED));
        assert!(!verify(&s, DATE, REQ_ID, &[ABSOLUTE], APP_KEY, EXPECTED));
        assert!(!verify(&s, DATE, REQ_ID, &[], APP_KEY, EXPECTED));
        assert!(!verify(&s, DATE, REQ_ID, &[PATH], "ApplicationKex", EXPECTED));
        assert!(!verify(b"SecretKez", DATE, REQ_ID, &[PATH], APP_KEY, EXPECTED));
    }

    #[test]
    fn long_keys_are_hashed_like_python_does() {
        let key = STANDARD.encode((0u8..100).collect::<Vec<_>>());
        let date = "Tue, 24 Nov 2015 12:50:11 GMT";
        assert_eq!(sign(&key, date, "req", PATH, APP_KEY).as_deref(), Ok("tKFgjP2HijD/dLO+fFEdALhrCRs="));
    }

    #[test]
    fn secret_key_decoding() {
        assert_eq!(decode_secret_key("U2VjcmV0S2V5"), Ok(b"SecretKey".to_vec()));
        assert_eq!(decode_secret_key("  U2VjcmV0S2V5\n"), Ok(b"SecretKey".to_vec()));
        assert_eq!(decode_secret_key("U2VjcmV0"), Ok(b"Secret".to_vec()));
        assert_eq!(decode_secret_key("U2VjcmV0S2V5cw=="), Ok(b"SecretKeys".to_vec()));
        assert_eq!(decode_secret_key("U2VjcmV0S2V5cw"), Ok(b"SecretKeys".to_vec()));
        assert_eq!(decode_secret_key("+/+/"), Ok(vec![0xfb, 0xff, 0xbf]));
        assert_eq!(decode_secret_key(""), Ok(Vec::new()));
        assert_eq!(decode_secret_key("U2Vj*mV0"), Err(BadSecretKey));
        assert_eq!(decode_secret_key("-_-_"), Err(BadSecretKey));
        assert_eq!(decode_secret_key("U"), Err(BadSecretKey));
        assert_eq!(decode_secret_key("U2Vj cmV0"), Err(BadSecretKey));
        assert_eq!(sign("not base64!", DATE, REQ_ID, PATH, APP_KEY), Err(BadSecretKey));
    }

    #[test]
    fn authorization_header_forms() {
        let want = Some(McAuthorization { access_key: "key-1", signature: EXPECTED });
        for value in [
            "MC key-1:zKULT7yH+YW/AjaEWbCoi8pYXxo=",
            "MC key-1: zKULT7yH+YW/AjaEWbCoi8pYXxo=",
            "MC key-1:\tzKULT7yH+YW/AjaEWbCoi8pYXxo=",
            "mc key-1:zKULT7yH+YW/AjaEWbCoi8pYXxo=",
            "Mc  key-1 :zKULT7yH+YW/AjaEWbCoi8pYXxo= ",
            "  MC key-1:zKULT7yH+YW/AjaEWbCoi8pYXxo=  ",
        ] {
            assert_eq!(parse_authorization(value), want, "{value:?}");
        }
    }

    #[test]
    fn authorization_header_rejections() {
        for value in [
            "",
            "MC",
            "MC ",
            "MC key-1",
            "MC :sig",
            "MC key-1:",
            "MC key-1:  ",
            "MCkey-1:sig",
            "Bearer key-1:sig",
            "Basic-Cloud dXNlcjpwYXNz",
            "MCC key-1:sig",
            "MC key 1:sig",
            "MC key-1:si g",
        ] {
            assert_eq!(parse_authorization(value), None, "{value:?}");
        }
        // Split at the first colon: the rest is the signature (and will not verify).
        assert_eq!(parse_authorization("MC a:b:c"), Some(McAuthorization { access_key: "a", signature: "b:c" }));
    }
}
