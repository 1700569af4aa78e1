#![forbid(unsafe_code)]
use clap::Parser;
use std::process::ExitCode;
use zerofn::cli::{self, Cli, Command, LogFormat};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = matches!(&cli.command, Command::Run(a) if a.log_format == LogFormat::Json);
    zerofn::logging::init(cli.verbose, json);
    cli::run(cli).await
}
