//! `beatstream`: runs the BeatStream services, all in one process or one per process.
//!
//! Thin on purpose: parse arguments, set up logging and shutdown, call the libraries.

mod cli;
#[cfg(test)]
mod cli_docs;
mod commands;
mod dev;
mod logging;
mod shutdown;
mod tasks;

use clap::Parser;

#[tokio::main]
async fn main() -> eyre::Result<()> {
    let cli = cli::Cli::parse();
    logging::init(cli.log_format)?;
    let shutdown = shutdown::on_signal();
    commands::run(cli.command, shutdown).await
}
