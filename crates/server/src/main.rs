//! `gatehouse`: thin entry point over the library.

use std::process::ExitCode;

use clap::Parser;
use gatehouse::{
    app::{self, App},
    bootstrap::{self, InitError},
    cli::{Cli, Command},
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
            app::prepare_data_dir(&config)?;
            let store = app::open_store(&config).await?;
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
    }
}
