//! bench/results.md holds one section per benchmark; each run replaces its
//! own section only, so the engine and API benchmarks can run separately.

pub fn write_section(name: &str, text: &str) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/results.md");
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let begin = format!("<!-- bench:{name} -->");
    let end = format!("<!-- /bench:{name} -->");
    let block = format!("{begin}\n{}\n{end}\n", text.trim_end());
    let new = match (old.find(&begin), old.find(&end)) {
        (Some(b), Some(e)) if e > b => {
            format!(
                "{}{block}{}",
                &old[..b],
                old[e + end.len()..].trim_start_matches('\n')
            )
        }
        // A file from before sections: the engine's text was the whole file.
        _ if name == "engine" || old.trim().is_empty() => block,
        _ => format!("{}\n\n{block}", old.trim_end()),
    };
    std::fs::write(path, new).expect("write bench/results.md");
    eprintln!("wrote the {name} section of {path}");
}
