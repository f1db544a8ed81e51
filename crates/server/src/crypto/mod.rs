//! Every piece of cryptography in one place: the master key and sealing of
//! stored secrets ([`master_key`], [`keyring`], [`rotation`]), connect-token JWTs and the
//! keys that sign them ([`jwt`], [`signing_keys`], [`jwks`]), password
//! hashing ([`passwords`]) and random session and CSRF tokens ([`tokens`]).

pub mod jwks;
pub mod jwt;
pub mod keyring;
pub mod master_key;
pub mod passwords;
pub mod rotation;
pub mod signing_keys;
pub mod tokens;

pub use keyring::{master_key_id, CryptoError, Keyring};
pub use master_key::MasterKey;
pub use signing_keys::SigningKeys;
