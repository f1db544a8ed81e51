//! The command line: `gatehouse serve`, `init`, `keys rotate` and
//! `master-key rotate`.

use std::{collections::HashMap, path::PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Layer};

#[derive(Debug, Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Self-hosted credentials service: access keys, personal access tokens and connect tokens."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (bootstraps an empty database on first start).
    Serve(CommonArgs),
    /// Bootstrap an empty database and exit.
    Init {
        #[command(flatten)]
        common: CommonArgs,
        /// Email of the first owner.
        #[arg(long)]
        owner_email: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Connect-token signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The master key that seals stored secrets.
    MasterKey {
        #[command(subcommand)]
        command: MasterKeyCommand,
    },
    /// For benchmarks (bench/run): add COUNT organization-wide access keys
    /// to an initialised database, without audit events, and write their
    /// tokens, one per line, to a new file readable only by its owner.
    #[command(hide = true)]
    BenchSeed {
        #[command(flatten)]
        common: CommonArgs,
        /// How many access keys to add.
        #[arg(long)]
        access_keys: u64,
        /// Where to write the tokens (must not exist).
        #[arg(long)]
        tokens_out: PathBuf,
    },
}

/// `gatehouse keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key the active one and print its kid; earlier
    /// keys stay published until every token they signed has expired.
    /// Running nodes switch to it on their next key reload.
    Rotate(CommonArgs),
}

/// `gatehouse master-key …`
#[derive(Debug, Subcommand)]
pub enum MasterKeyCommand {
    /// Replace the key in master_key_file with a new one, re-sealing every
    /// stored secret in one transaction. Stop every node first and start
    /// them afterwards (copying the new key file to each). Safe to run
    /// again if interrupted. Refused for an inline master_key.
    Rotate(CommonArgs),
}

/// Flags shared by every command; each overrides `gatehouse.toml` and
/// `GATEHOUSE_<KEY>`.
#[derive(Debug, Args, Default)]
pub struct CommonArgs {
    /// Configuration file (default: ./gatehouse.toml when present; env GATEHOUSE_CONFIG).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long)]
    pub listen: Option<String>,
    /// Directory for the SQLite database and key files (default ./data).
    #[arg(long)]
    pub data_dir: Option<String>,
    /// sqlite://… or postgres://… (default: SQLite in the data dir).
    #[arg(long)]
    pub database_url: Option<String>,
    /// redis://… for shared rate limits.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// The public base URL (default http://localhost:<port>).
    #[arg(long)]
    pub public_url: Option<String>,
    /// Domain under which apps get their hostnames (default apps.localhost).
    #[arg(long)]
    pub apps_domain: Option<String>,
    /// File holding the master key (default <data_dir>/master.key).
    #[arg(long)]
    pub master_key_file: Option<String>,
    /// text or json.
    #[arg(long)]
    pub log_format: Option<String>,
}

impl CommonArgs {
    /// The flags given, as the top configuration layer.
    fn as_layer(&self) -> Layer {
        Layer::from_pairs([
            ("listen", self.listen.clone()),
            ("data_dir", self.data_dir.clone()),
            ("database_url", self.database_url.clone()),
            ("redis_url", self.redis_url.clone()),
            ("public_url", self.public_url.clone()),
            ("apps_domain", self.apps_domain.clone()),
            ("master_key_file", self.master_key_file.clone()),
            ("log_format", self.log_format.clone()),
        ])
    }

    /// Resolves defaults < file < environment < these flags.
    pub fn resolve(&self, env: &HashMap<String, String>) -> anyhow::Result<Config> {
        let file_path = self
            .config
            .clone()
            .or_else(|| env.get("GATEHOUSE_CONFIG").map(PathBuf::from));
        let file = match file_path {
            Some(path) => Layer::from_toml_file(&path)?,
            None if std::path::Path::new("gatehouse.toml").exists() => {
                Layer::from_toml_file(std::path::Path::new("gatehouse.toml"))?
            }
            None => Layer::default(),
        };
        file.under(Layer::from_env(env))
            .under(self.as_layer())
            .resolve()
    }
}
