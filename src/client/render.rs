//! Human output of the support commands: aligned tables and a step
//! timeline, read from the API's JSON as-is so a new field never breaks
//! them.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::fmt::Write as _;

pub fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// "12s ago", "5m ago": support staff scan for what is recent.
pub fn ago(ts: &Value, now: DateTime<Utc>) -> String {
    let Some(t) = ts
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    else {
        return "-".into();
    };
    let secs = (now - t.with_timezone(&Utc)).num_seconds().max(0);
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86400),
    }
}

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

fn run_brief(run: &Value) -> String {
    if run.is_null() {
        return "-".into();
    }
    let mut out = format!("{} {}", s(&run["kind"]), s(&run["status"]));
    if let Some(step) = run["failed_step"].as_str() {
        let _ = write!(out, " at {step}");
    }
    out
}

/// Tenants whose latest run needs someone first, then newest first (the
/// API's order).
pub fn tenants(items: &[Value], now: DateTime<Utc>) -> String {
    if items.is_empty() {
        return "no tenants\n".into();
    }
    let mut sorted: Vec<&Value> = items.iter().collect();
    sorted.sort_by_key(|t| !needs_attention(&t["latest_run"]));
    let rows: Vec<Vec<String>> = sorted
        .iter()
        .map(|t| {
            vec![
                s(&t["name"]).to_owned(),
                s(&t["status"]).to_owned(),
                t["plan"].as_str().unwrap_or("-").to_owned(),
                run_brief(&t["latest_run"]),
                ago(&t["updated_at"], now),
                t["latest_run"]["error"]
                    .as_str()
                    .map(one_line)
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let mut out = table(
        &["TENANT", "STATUS", "PLAN", "LATEST RUN", "UPDATED", "ERROR"],
        &rows,
    );
    let _ = writeln!(out, "{}", counts(items.iter().map(|t| s(&t["status"]))));
    out
}

/// Failed runs, one line each (`tenants list --status failed`).
pub fn failed_runs(items: &[Value], now: DateTime<Utc>) -> String {
    if items.is_empty() {
        return "no failed runs\n".into();
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|r| {
            vec![
                s(&r["tenant_name"]).to_owned(),
                run_brief(r),
                s(&r["id"]).to_owned(),
                ago(&r["updated_at"], now),
                r["error"].as_str().map(one_line).unwrap_or_default(),
            ]
        })
        .collect();
    let mut out = table(&["TENANT", "RUN", "RUN ID", "UPDATED", "ERROR"], &rows);
    let _ = writeln!(out, "{} failed run(s)", items.len());
    out
}

fn needs_attention(run: &Value) -> bool {
    matches!(
        s(&run["status"]),
        "failed" | "compensation_failed" | "cancelled"
    )
}

fn counts<'a>(statuses: impl Iterator<Item = &'a str>) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    let mut total = 0;
    for st in statuses {
        total += 1;
        match counts.iter_mut().find(|(k, _)| *k == st) {
            Some((_, n)) => *n += 1,
            None => counts.push((st, 1)),
        }
    }
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    format!("{total} tenant(s): {}", parts.join(", "))
}

fn one_line(e: &str) -> String {
    let flat = e.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 100 {
        format!("{}…", flat.chars().take(99).collect::<String>())
    } else {
        flat
    }
}

fn icon(status: &str) -> &'static str {
    match status {
        "completed" => "✔",
        "running" => "▶",
        "retrying" => "↻",
        "failed" | "compensation_failed" => "✘",
        "skipped" => "–",
        "compensating" => "↶",
        "compensated" => "↺",
        _ => "·",
    }
}

/// The tenant, its runs and the latest run's steps and log.
pub fn timeline(tenant: &Value, runs: &[Value], detail: &Value, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    if tenant.is_null() {
        if let Some(r) = runs.first() {
            let name = s(&r["tenant_name"]);
            let _ = writeln!(
                out,
                "tenant '{name}' is not registered (its run failed early)"
            );
        }
    } else {
        let _ = writeln!(
            out,
            "tenant '{}' is {}  (plan {}, id {}, created {})",
            s(&tenant["name"]),
            s(&tenant["status"]),
            tenant["plan"].as_str().unwrap_or("-"),
            tenant["id"].as_str().unwrap_or("-"),
            ago(&tenant["created_at"], now),
        );
        for (label, key) in [
            ("realm", "realm_name"),
            ("postgres", "postgres_db"),
            ("mongo", "mongo_db"),
            ("qdrant", "qdrant_collection"),
            ("storage", "storage_path"),
        ] {
            if let Some(v) = tenant[key].as_str() {
                let _ = writeln!(out, "  {label:<9} {v}");
            }
        }
        let live: Vec<String> = tenant["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["deleted_at"].is_null())
            .map(|r| format!("{} {}", s(&r["kind"]), s(&r["name"])))
            .collect();
        if !live.is_empty() {
            let _ = writeln!(out, "  {:<9} {}", "resources", live.join(", "));
        }
    }
    if !runs.is_empty() {
        let _ = writeln!(out, "\nruns (newest first):");
        let rows: Vec<Vec<String>> = runs
            .iter()
            .map(|r| {
                vec![
                    s(&r["id"]).to_owned(),
                    run_brief(r),
                    ago(&r["created_at"], now),
                ]
            })
            .collect();
        for l in table(&["RUN ID", "RUN", "STARTED"], &rows).lines() {
            let _ = writeln!(out, "  {l}");
        }
    }
    if detail.is_null() {
        return out;
    }
    let _ = writeln!(
        out,
        "\nrun {} ({}): {}",
        s(&detail["id"]),
        s(&detail["kind"]),
        s(&detail["status"])
    );
    if let Some(e) = detail["error"].as_str() {
        let _ = writeln!(out, "  error: {}", one_line(e));
    }
    for st in detail["steps"].as_array().into_iter().flatten() {
        let status = s(&st["status"]);
        let dur = st["duration_ms"]
            .as_i64()
            .map(|ms| format!("{ms} ms"))
            .unwrap_or_default();
        let note = match (status, st["waiting_for"].as_str()) {
            ("pending" | "retrying", Some(why)) => one_line(why),
            ("completed" | "pending" | "running", _) => String::new(),
            _ => st["last_error"].as_str().map(one_line).unwrap_or_default(),
        };
        let line = format!(
            "  {} {:>2}. {:<9} {:<13} attempts {:<2} {:>8}  {}",
            icon(status),
            st["position"].as_i64().unwrap_or(0) + 1,
            s(&st["name"]),
            status,
            st["attempts"].as_i64().unwrap_or(0),
            dur,
            note
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let logs = detail["logs"].as_array().map_or(&[][..], Vec::as_slice);
    if !logs.is_empty() {
        const SHOWN: usize = 15;
        let skip = logs.len().saturating_sub(SHOWN);
        let _ = writeln!(out, "\nlog (last {} of {}):", logs.len() - skip, logs.len());
        for l in &logs[skip..] {
            let at = s(&l["at"]);
            let time = at.get(11..19).unwrap_or(at);
            let line = format!(
                "  {time}  {:<9} {:<10} {}",
                l["step"].as_str().unwrap_or("-"),
                s(&l["status"]),
                one_line(s(&l["message"]))
            );
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    out
}

/// One line for an action's run: what started and where it resumes.
pub fn action(verb: &str, run: &Value) -> String {
    let mut out = format!(
        "{verb}: run {} ({}) for tenant '{}' is {}",
        s(&run["id"]),
        s(&run["kind"]),
        s(&run["tenant_name"]),
        s(&run["status"])
    );
    if let Some(step) = run["failed_step"].as_str() {
        let _ = write!(out, ", resuming at {step}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_puts_failed_tenants_first_and_counts_statuses() {
        let now = Utc::now();
        let items = vec![
            json!({"name": "okay", "status": "active", "plan": "pro",
                   "updated_at": (now - chrono::Duration::seconds(90)).to_rfc3339(),
                   "latest_run": {"kind": "provision", "status": "completed"}}),
            json!({"name": "broken", "status": "suspended", "plan": null,
                   "latest_run": {"kind": "provision", "status": "failed",
                                  "failed_step": "postgres", "error": "boom\n  again"}}),
        ];
        let out = tenants(&items, now);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("TENANT"), "{out}");
        assert!(lines[1].starts_with("broken"), "{out}");
        assert!(
            lines[1].contains("provision failed at postgres") && lines[1].ends_with("boom again"),
            "{out}"
        );
        assert!(lines[2].contains("1m ago"), "{out}");
        assert_eq!(lines[3], "2 tenant(s): 1 active, 1 suspended");
    }

    #[test]
    fn timeline_shows_steps_with_errors() {
        let detail = json!({"id": "r1", "kind": "provision", "status": "failed",
            "error": "step postgres failed",
            "steps": [
                {"position": 0, "name": "validate", "status": "completed", "attempts": 1, "duration_ms": 2},
                {"position": 1, "name": "postgres", "status": "failed", "attempts": 3,
                 "last_error": "connection refused"}],
            "logs": [{"at": "2026-11-26T00:12:01.123Z", "step": "postgres", "status": "failed",
                      "message": "connection refused"}]});
        let out = timeline(
            &json!({"name": "acme", "status": "suspended", "id": "t1"}),
            &[],
            &detail,
            Utc::now(),
        );
        assert!(out.contains("tenant 'acme' is suspended"), "{out}");
        assert!(
            out.contains("✘  2. postgres  failed        attempts 3            connection refused"),
            "{out}"
        );
        assert!(out.contains("00:12:01  postgres  failed"), "{out}");
    }
}
