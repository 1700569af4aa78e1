use clap::Parser;
use std::process::ExitCode;
use zerofn::cli::{self, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    zerofn::logging::init(cli.verbose);
    cli::run(cli).await
}
