//! One place that sets up logging: `RUST_LOG` filter (else the caller's level),
//! JSON lines when `LOG_FORMAT=json`.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

pub fn init(json: bool, default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{default_level},sqlx=warn,apalis=warn,apalis_core=warn,apalis_postgres=warn"
        ))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only where a person reads them, not in log files.
        .with_ansi(std::io::stderr().is_terminal());
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
