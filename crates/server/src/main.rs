//! `gatehouse`: thin entry point over the library.

use std::process::ExitCode;

use clap::Parser;
use gatehouse::{
    cli::{Cli, Command, CommonArgs, KeysCommand, MasterKeyCommand},
    crypto::{rotation, Keyring, SigningKeys},
    service::{
        bootstrap::{self, InitError},
        credentials,
    },
    startup::{self, App},
    telemetry,
};
use gatehouse_core::validate::Email;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let env: std::collections::HashMap<String, String> = std::env::vars().collect();
    match run(cli, env).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("gatehouse: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, env: std::collections::HashMap<String, String>) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(common) => {
            let config = common.resolve(&env)?;
            telemetry::init_logging(config.log_format);
            let mut app = App::build(config).await?;
            if let Some(init) = app.take_init_output() {
                // Printed straight to stdout, once, and never through the logger.
                println!("{}", init.banner(&app.state().config().public_url));
            }
            app.run_until_stopped().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Init {
            common,
            owner_email,
            json,
        } => {
            let config = common.resolve(&env)?;
            telemetry::init_logging(config.log_format);
            let email = Email::parse(&owner_email)
                .map_err(|e| anyhow::anyhow!("invalid --owner-email: {e}"))?;
            startup::prepare_data_dir(&config)?;
            let store = startup::open_store(&config).await?;
            let result = bootstrap::init(&store, &config, &email).await;
            store.close().await;
            match result {
                Ok(out) if json => println!("{}", out.to_json()),
                Ok(out) => println!("{}", out.banner(&config.public_url)),
                Err(InitError::AlreadyInitialised) => {
                    eprintln!(
                        "gatehouse: this database is already initialised; nothing was changed"
                    );
                    return Ok(ExitCode::from(2));
                }
                Err(InitError::Other(e)) => return Err(e),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys {
            command: KeysCommand::Rotate(common),
        } => {
            let kid = rotate_signing_key(&common, &env).await?;
            println!("{kid}");
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchSeed {
            common,
            access_keys,
            tokens_out,
        } => {
            bench_seed(&common, &env, access_keys, &tokens_out).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::MasterKey {
            command: MasterKeyCommand::Rotate(common),
        } => {
            let config = common.resolve(&env)?;
            telemetry::init_logging(config.log_format);
            let (file, current) = rotation::rotation_source(&config)?;
            let store = startup::open_store(&config).await?;
            let done = rotation::rotate(&store, file, &current).await;
            store.close().await;
            let done = done?;
            println!(
                "master key rotated: {} -> {}; re-sealed {} signing key(s), {} connection(s) and \
                 {} OAuth2 secret(s) and {} webhook secret(s){}.\n\
                 Restart every gatehouse node so it loads the new key (nodes on other machines \
                 need a copy of {}).",
                done.old_id,
                done.new_id,
                done.resealed.signing_keys,
                done.resealed.connections,
                done.resealed.oauth2_providers + done.resealed.oauth2_flows,
                done.resealed.webhook_secrets,
                if done.resumed {
                    " (finished an interrupted rotation)"
                } else {
                    ""
                },
                config.master_key_file.display(),
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `gatehouse keys rotate`: returns the new kid.
/// `gatehouse bench-seed`: many access keys, their tokens to a new 0600
/// file.
async fn bench_seed(
    common: &CommonArgs,
    env: &std::collections::HashMap<String, String>,
    count: u64,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    use secrecy::ExposeSecret;

    let config = common.resolve(env)?;
    telemetry::init_logging(config.log_format);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
    let mut file = std::io::BufWriter::new(file);
    let store = startup::open_store(&config).await?;
    let started = std::time::Instant::now();
    let seeded = credentials::seed_access_keys(&store, &config.token_prefixes(), count, |batch| {
        for t in batch {
            writeln!(file, "{}", t.token.expose_secret())?;
        }
        Ok(())
    })
    .await;
    store.close().await;
    seeded?;
    file.flush()?;
    eprintln!(
        "added {count} access keys in {:.1} s; tokens in {}",
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}

async fn rotate_signing_key(
    common: &CommonArgs,
    env: &std::collections::HashMap<String, String>,
) -> anyhow::Result<String> {
    let config = common.resolve(env)?;
    telemetry::init_logging(config.log_format);
    let master = startup::prepare_data_dir(&config)?;
    let keyring = Keyring::for_config(&master, &config)?;
    let store = startup::open_store(&config).await?;
    let kid = SigningKeys::rotate(&store, &keyring).await;
    store.close().await;
    kid
}
