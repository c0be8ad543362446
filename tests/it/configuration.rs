//! docs/configuration.md against the code: every variable a Landlord
//! process reads is documented there, and every variable its table names
//! is read by the code (or by a library we use, named below).

use std::collections::BTreeSet;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The files that read the environment (`Config::from_lookup`, the API's
/// config, the seed, the CLI and its client, telemetry).
const READERS: &[&str] = &[
    "shared/src/config.rs",
    "api/src/config.rs",
    "src/seed.rs",
    "src/main.rs",
    "src/client/mod.rs",
    "shared/src/telemetry.rs",
];

/// Read by libraries, not by our code.
const LIBRARY_VARS: &[&str] = &["RUST_LOG"];

/// `NAME`-shaped words: upper case with at least one underscore.
fn names(text: &str, quote: char) -> BTreeSet<String> {
    text.split(quote)
        .skip(1)
        .step_by(2)
        .filter(|w| {
            w.contains('_')
                && w.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_variable_the_code_reads_is_documented() {
    let doc = std::fs::read_to_string(format!("{ROOT}/docs/configuration.md")).unwrap();
    let mentioned = names(&doc, '`');
    let mut read = BTreeSet::new();
    for f in READERS {
        let text = std::fs::read_to_string(format!("{ROOT}/{f}")).unwrap();
        read.extend(names(&text, '"'));
    }
    // `{NAME}_FILE` is one row for every secret variable.
    let undocumented: Vec<_> = read
        .iter()
        .filter(|v| !mentioned.contains(*v))
        .filter(|v| {
            !v.strip_suffix("_FILE")
                .is_some_and(|base| mentioned.contains(base))
        })
        .collect();
    assert!(
        undocumented.is_empty(),
        "read by the code, missing from docs/configuration.md: {undocumented:?}"
    );

    let in_table: BTreeSet<String> = doc
        .lines()
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| names(l.split('|').nth(1).unwrap_or(""), '`'))
        .collect();
    let unread: Vec<_> = in_table
        .iter()
        .filter(|v| !read.contains(*v) && !LIBRARY_VARS.contains(&v.as_str()))
        .collect();
    assert!(
        unread.is_empty(),
        "documented but read by no code: {unread:?}"
    );
}
