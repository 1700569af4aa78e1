//! Log setup: human-readable on stderr for the CLI, JSON lines for the
//! controller; `RUST_LOG` overrides the level.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

pub fn init(verbose: u8, json: bool) {
    let default = match verbose {
        0 if json => "info",
        0 => "warn",
        1 => "info,zerofn=info",
        // The AWS SDK's debug events print its config bag, which holds the
        // resolved access key id: capped at info.
        _ => {
            "debug,zerofn=debug,hyper=info,h2=info,rustls=info,aws_smithy_runtime=info,aws_smithy_runtime_api=info,aws_config=info"
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(false).try_init()
    } else {
        // Colour codes only where a terminal reads them, never into a file
        // or a pipe.
        let ansi = std::io::stderr().is_terminal();
        builder.with_target(false).with_ansi(ansi).try_init()
    };
}
