//! Password hashing with argon2id, always off the async worker threads and
//! at most one per core at a time, so a burst of sign-ins queues instead of
//! taking every thread and all the memory argon2 needs.

use anyhow::Context;
use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use rand::{distr::Alphanumeric, Rng};
use secrecy::{ExposeSecret, SecretString};

/// The right to run one argon2 computation.
async fn slot() -> anyhow::Result<tokio::sync::SemaphorePermit<'static>> {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let slots = SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        tokio::sync::Semaphore::new(cores)
    });
    slots.acquire().await.context("password hashing slots")
}

/// Hashes `password` (argon2id, default parameters) into a PHC string.
pub async fn hash(password: SecretString) -> anyhow::Result<String> {
    let _slot = slot().await?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
    })
    .await
    .context("password hashing task")?
}

/// Checks `password` against a PHC string; a malformed hash is a mismatch.
pub async fn verify(password: SecretString, phc: String) -> anyhow::Result<bool> {
    let _slot = slot().await?;
    tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&phc) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok()
    })
    .await
    .context("password verification task")
}

/// A generated password: 24 alphanumerics (about 142 bits).
pub fn generate() -> SecretString {
    let s: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    SecretString::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hash verifies its own password and no other, and is argon2id.
    #[tokio::test]
    async fn hash_and_verify() {
        let password = generate();
        let phc = hash(password.clone()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(!phc.contains(password.expose_secret()));
        assert!(verify(password, phc.clone()).await.unwrap());
        assert!(!verify(SecretString::from("wrong password!"), phc)
            .await
            .unwrap());
    }
}
