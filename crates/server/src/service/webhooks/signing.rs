//! Standard Webhooks signatures: `webhook-signature: v1,<base64 of
//! HMAC-SHA256("{id}.{timestamp}.{body}")>` under the secret's decoded
//! bytes; several space-separated signatures while a rotated secret is
//! still valid.

use aws_lc_rs::hmac;
use base64::{engine::general_purpose::STANDARD, Engine};
use gatehouse_core::webhook::SECRET_PREFIX;
use secrecy::{ExposeSecret, SecretString};

/// The HMAC key of a `whsec_…` secret; `None` for one Gatehouse did not
/// make.
pub fn key_of(secret: &SecretString) -> Option<hmac::Key> {
    let encoded = secret.expose_secret().strip_prefix(SECRET_PREFIX)?;
    let bytes = STANDARD.decode(encoded).ok()?;
    Some(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
}

/// The `webhook-signature` header value for one message under each key.
pub fn signature(keys: &[hmac::Key], id: &str, timestamp: i64, body: &str) -> String {
    let signed = format!("{id}.{timestamp}.{body}");
    keys.iter()
        .map(|key| {
            let tag = hmac::sign(key, signed.as_bytes());
            format!("v1,{}", STANDARD.encode(tag.as_ref()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn standard_webhooks_example() {
        let secret = SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let key = key_of(&secret).unwrap();
        let sig = signature(
            &[key],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn two_keys_two_signatures() {
        let a = key_of(&SecretString::from(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ))
        .unwrap();
        let b = key_of(&SecretString::from(
            "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ))
        .unwrap();
        let sig = signature(&[a, b], "evt_1", 1, "{}");
        assert_eq!(sig.split(' ').count(), 2);
        assert!(key_of(&SecretString::from("nope")).is_none());
    }
}
