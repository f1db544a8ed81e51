//! Micro-benchmarks of the work on Gatehouse's hot paths, each alone:
//! parsing an access key (shape and checksum, then its SHA-256), finding a
//! credential by that hash in the cache, signing and verifying a connect
//! token (RS256, RSA-2048), and sealing and opening a stored secret
//! (AES-256-GCM). `cargo bench -p gatehouse --bench hot_paths`; the
//! whole-request figures are `bench/run`'s (BENCHMARKS.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{hint::black_box, sync::Arc};

use aws_lc_rs::rsa::{KeyPair, KeySize};
use criterion::{criterion_group, criterion_main, Criterion};
use gatehouse::{
    crypto::{jwks, jwt, Keyring, MasterKey},
    service::principal::{CallerKind, CredentialCache, Memo, Principal},
};
use gatehouse_core::{token, Reach, ScopeSet, TokenKind, TokenPrefixes};
use jsonwebtoken::DecodingKey;

fn tokens(c: &mut Criterion) {
    let prefixes = TokenPrefixes::default();
    let key = token::generate(&prefixes, TokenKind::AccessKey);
    let raw = secrecy::ExposeSecret::expose_secret(&key.token).to_string();
    c.bench_function("access key: parse, checksum and SHA-256", |b| {
        b.iter(|| token::parse(&prefixes, black_box(&raw)).unwrap())
    });
    let mut bad = raw.clone();
    bad.replace_range(10..11, if &raw[10..11] == "a" { "b" } else { "a" });
    c.bench_function("access key: a wrong checksum refused", |b| {
        b.iter(|| token::parse(&prefixes, black_box(&bad)).is_err())
    });
}

fn cache(c: &mut Criterion) {
    let cache = CredentialCache::default();
    let prefixes = TokenPrefixes::default();
    let mut hashes = Vec::new();
    for i in 0..5_000 {
        let t = token::generate(&prefixes, TokenKind::AccessKey);
        let principal = Principal {
            kind: CallerKind::AccessKey,
            id: format!("key_{i:026}"),
            user_id: "usr_01".into(),
            role: None,
            reach: Reach::organization("org_01"),
            scopes: ScopeSet::all(),
            credential: None,
            memo: Memo::default(),
        };
        cache.insert(t.hash.0, Arc::new(principal));
        hashes.push(t.hash.0);
    }
    let mut i = 0;
    c.bench_function(
        "credential cache: lookup by token hash (5,000 cached)",
        |b| {
            b.iter(|| {
                i = (i + 1) % hashes.len();
                cache.get(black_box(&hashes[i])).is_some()
            })
        },
    );
}

fn connect_tokens(c: &mut Criterion) {
    let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let (n, e) = jwks::public_components(&pair);
    let decoding = DecodingKey::from_rsa_components(&n, &e).unwrap();
    let now = gatehouse_core::time::now_ms() / 1000;
    let claims = jwt::ConnectClaims {
        user_id: "ada".into(),
        sub: "ada".into(),
        app_id: "app_01".into(),
        environment_id: "env_01".into(),
        iss: "http://localhost:8080".into(),
        aud: jwt::AUDIENCE.into(),
        iat: now,
        nbf: now,
        exp: now + 3600,
        jti: "01hzzzzzzzzzzzzzzzzzzzzzzz".into(),
        redirect_url: None,
        minted_by: Some("key_01".into()),
        error_redirect_url: None,
        allowed_origins: Vec::new(),
    };
    let header = jwt::encoded_header("kid-1").unwrap();
    let input = jwt::signing_input(&header, &claims).unwrap();
    c.bench_function("connect token: sign (RS256, RSA-2048)", |b| {
        b.iter(|| jwt::sign(&pair, black_box(&input)).unwrap())
    });
    let token = jwt::sign(&pair, &input).unwrap();
    c.bench_function("connect token: verify and decode claims", |b| {
        b.iter(|| jwt::decode(black_box(&token), &decoding, "http://localhost:8080").unwrap())
    });
}

fn sealing(c: &mut Criterion) {
    let keyring = Keyring::new(&MasterKey::from_bytes([7; 32]), &[]).unwrap();
    let secret = br#"{"api_key":"sk-0123456789abcdefghijklmnopqrstuvwxyz"}"#;
    c.bench_function("connection secret: seal (AES-256-GCM)", |b| {
        b.iter(|| keyring.seal(black_box(secret), b"conn_01").unwrap())
    });
    let (id, blob) = keyring.seal(secret, b"conn_01").unwrap();
    c.bench_function("connection secret: open", |b| {
        b.iter(|| keyring.open(&id, black_box(&blob), b"conn_01").unwrap())
    });
}

criterion_group!(benches, tokens, cache, connect_tokens, sealing);
criterion_main!(benches);
