//! `beatstream`: runs the BeatStream services, all in one process or one per process.
//!
//! Thin on purpose: parse arguments, set up logging and shutdown, call the libraries.

mod cli;
#[cfg(test)]
mod cli_docs;
mod commands;
mod dev;
mod logging;
mod settings;
mod shutdown;
mod tasks;

use clap::{CommandFactory, FromArgMatches};

fn main() -> eyre::Result<()> {
    // The command line, with the `--config` file's settings under it and over the defaults.
    let command = cli::Cli::command();
    let layered = settings::layer(&command, std::env::args_os().collect())?;
    let matches = command.get_matches_from(layered.args);
    let cli = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if cli.print_config {
        let (name, sub) = matches.subcommand().expect("a subcommand is required");
        let sub_command = cli::Cli::command();
        let sub_command = sub_command.find_subcommand(name).expect("parsed");
        print!("{}", settings::render(sub_command, sub, &layered.from_file));
        return Ok(());
    }
    logging::init(cli.log_format)?;
    // One TLS crypto provider for every client of the process (https/wss RPC, Yellow, Postgres).
    beatstream_primitives::tls::install_crypto_provider();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async {
        let shutdown = shutdown::on_signal();
        commands::run(cli.command, shutdown).await
    })
}
