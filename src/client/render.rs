//! Human output of the support commands: aligned tables and a step
//! timeline, from the typed client's answers.

use chrono::{DateTime, Utc};
use landlord_client::models::{RunDetail, RunSummary, Step, Tenant, TenantDetail};
use std::fmt::Write as _;

/// "12s ago", "5m ago": support staff scan for what is recent.
pub fn ago(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(t) = t else {
        return "-".into();
    };
    let secs = (now - t).num_seconds().max(0);
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

fn run_brief(run: Option<&RunSummary>) -> String {
    let Some(run) = run else {
        return "-".into();
    };
    let mut out = format!("{} {}", run.kind, run.status);
    if let Some(step) = &run.failed_step {
        let _ = write!(out, " at {step}");
    }
    out
}

/// Tenants whose latest run needs someone first, then newest first (the
/// API's order).
pub fn tenants(items: &[Tenant], now: DateTime<Utc>) -> String {
    if items.is_empty() {
        return "no tenants\n".into();
    }
    let mut sorted: Vec<&Tenant> = items.iter().collect();
    sorted.sort_by_key(|t| !t.latest_run.as_ref().is_some_and(needs_attention));
    let rows: Vec<Vec<String>> = sorted
        .iter()
        .map(|t| {
            let run = t.latest_run.as_ref();
            vec![
                t.name.clone(),
                t.status.clone(),
                t.plan.clone().unwrap_or_else(|| "-".into()),
                run_brief(run),
                ago(Some(t.updated_at), now),
                run.and_then(|r| r.error.as_deref())
                    .map(one_line)
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let mut out = table(
        &["TENANT", "STATUS", "PLAN", "LATEST RUN", "UPDATED", "ERROR"],
        &rows,
    );
    let _ = writeln!(out, "{}", counts(items.iter().map(|t| t.status.as_str())));
    out
}

/// Failed runs, one line each (`tenants list --status failed`).
pub fn failed_runs(items: &[RunSummary], now: DateTime<Utc>) -> String {
    if items.is_empty() {
        return "no failed runs\n".into();
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|r| {
            vec![
                r.tenant_name.clone(),
                run_brief(Some(r)),
                r.id.to_string(),
                ago(Some(r.updated_at), now),
                r.error.as_deref().map(one_line).unwrap_or_default(),
            ]
        })
        .collect();
    let mut out = table(&["TENANT", "RUN", "RUN ID", "UPDATED", "ERROR"], &rows);
    let _ = writeln!(out, "{} failed run(s)", items.len());
    out
}

fn needs_attention(run: &RunSummary) -> bool {
    matches!(
        run.status.as_str(),
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
pub fn timeline(
    tenant: Option<&TenantDetail>,
    runs: &[RunSummary],
    detail: Option<&RunDetail>,
    now: DateTime<Utc>,
) -> String {
    let mut out = String::new();
    match tenant {
        None => {
            if let Some(r) = runs.first() {
                let _ = writeln!(
                    out,
                    "tenant '{}' is not registered (its run failed early)",
                    r.tenant_name
                );
            }
        }
        Some(t) => {
            let _ = writeln!(
                out,
                "tenant '{}' is {}  (plan {}, id {}, created {})",
                t.name,
                t.status,
                t.plan.as_deref().unwrap_or("-"),
                t.id,
                ago(Some(t.created_at), now),
            );
            for (label, value) in [
                ("realm", &t.realm_name),
                ("postgres", &t.postgres_db),
                ("mongo", &t.mongo_db),
                ("qdrant", &t.qdrant_collection),
                ("storage", &t.storage_path),
            ] {
                if let Some(v) = value {
                    let _ = writeln!(out, "  {label:<9} {v}");
                }
            }
            let live: Vec<String> = t
                .resources
                .iter()
                .filter(|r| r.deleted_at.is_none())
                .map(|r| format!("{} {}", r.kind, r.name))
                .collect();
            if !live.is_empty() {
                let _ = writeln!(out, "  {:<9} {}", "resources", live.join(", "));
            }
        }
    }
    if !runs.is_empty() {
        let _ = writeln!(out, "\nruns (newest first):");
        let rows: Vec<Vec<String>> = runs
            .iter()
            .map(|r| {
                vec![
                    r.id.to_string(),
                    run_brief(Some(r)),
                    ago(Some(r.created_at), now),
                ]
            })
            .collect();
        for l in table(&["RUN ID", "RUN", "STARTED"], &rows).lines() {
            let _ = writeln!(out, "  {l}");
        }
    }
    let Some(detail) = detail else {
        return out;
    };
    let _ = writeln!(
        out,
        "\nrun {} ({}): {}",
        detail.id, detail.kind, detail.status
    );
    if let Some(e) = &detail.error {
        let _ = writeln!(out, "  error: {}", one_line(e));
    }
    for st in &detail.steps {
        let _ = writeln!(out, "  {}", step_line(st));
    }
    let logs = &detail.logs;
    if !logs.is_empty() {
        const SHOWN: usize = 15;
        let skip = logs.len().saturating_sub(SHOWN);
        let _ = writeln!(out, "\nlog (last {} of {}):", logs.len() - skip, logs.len());
        for l in &logs[skip..] {
            let line = format!(
                "  {}  {:<9} {:<10} {}",
                l.at.format("%H:%M:%S"),
                l.step,
                l.status,
                one_line(l.message.as_deref().unwrap_or_default())
            );
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    out
}

/// A step of a run's timeline, on one line.
pub fn step_line(st: &Step) -> String {
    let status = st.status.as_str();
    let dur = st
        .duration_ms
        .map(|ms| format!("{ms} ms"))
        .unwrap_or_default();
    let note = match (status, st.waiting_for.as_deref()) {
        ("pending" | "retrying", Some(why)) => one_line(why),
        ("completed" | "pending" | "running", _) => String::new(),
        _ => st.last_error.as_deref().map(one_line).unwrap_or_default(),
    };
    let line = format!(
        "{} {:>2}. {:<9} {:<13} attempts {:<2} {:>8}  {}",
        icon(status),
        st.position + 1,
        st.name,
        status,
        st.attempts,
        dur,
        note
    );
    line.trim_end().to_owned()
}

/// One line for an action's run: what started and where it resumes.
pub fn action(verb: &str, run: &RunSummary) -> String {
    let mut out = format!(
        "{verb}: run {} ({}) for tenant '{}' is {}",
        run.id, run.kind, run.tenant_name, run.status
    );
    if let Some(step) = &run.failed_step {
        let _ = write!(out, ", resuming at {step}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn run(extra: Value) -> Value {
        let mut r = json!({"id": "01a25168-556d-72d6-9ff2-9d525cfd0bae", "workflow_id": "provision-tenant-x",
            "kind": "provision", "tenant_name": "x", "tenant_id": null, "status": "completed",
            "error": null, "failed_step": null, "cancel_requested": null,
            "created_at": "2026-11-26T00:12:00Z", "updated_at": "2026-11-26T00:12:00Z",
            "finished_at": null, "plan": null});
        r.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        r
    }

    fn tenant(extra: Value) -> Value {
        let mut t = json!({"id": "01a25168-55c3-713e-b443-aaa5f3b22f7c", "name": "x", "status": "active",
            "plan": null, "realm_name": null, "postgres_db": null, "mongo_db": null,
            "qdrant_collection": null, "storage_path": null, "template_key": null,
            "template_version": null, "created_at": "2026-11-26T00:12:00Z",
            "updated_at": "2026-11-26T00:12:00Z", "latest_run": null});
        t.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        t
    }

    #[test]
    fn list_puts_failed_tenants_first_and_counts_statuses() {
        let now = Utc::now();
        let items: Vec<Tenant> = serde_json::from_value(json!([
            tenant(json!({"name": "okay", "status": "active", "plan": "pro",
                   "updated_at": (now - chrono::Duration::seconds(90)).to_rfc3339(),
                   "latest_run": run(json!({}))})),
            tenant(json!({"name": "broken", "status": "suspended",
                   "latest_run": run(json!({"status": "failed", "failed_step": "postgres",
                                            "error": "boom\n  again"}))})),
        ]))
        .unwrap();
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
        let step = |extra: Value| {
            let mut s = json!({"position": 0, "name": "validate", "description": "", "status": "completed",
                "attempts": 1, "undo_attempts": 0, "lost_attempts": 0, "needs": null, "waiting_for": null,
                "duration_ms": null, "last_error": null, "started_at": null, "finished_at": null,
                "compensated_at": null});
            s.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            s
        };
        let mut detail = run(json!({"status": "failed", "error": "step postgres failed"}));
        detail["steps"] = json!([
            step(json!({"duration_ms": 2})),
            step(
                json!({"position": 1, "name": "postgres", "status": "failed", "attempts": 3,
                        "last_error": "connection refused"})
            ),
        ]);
        detail["logs"] = json!([{"at": "2026-11-26T00:12:01.123Z", "step": "postgres",
                                 "status": "failed", "message": "connection refused"}]);
        let detail: RunDetail = serde_json::from_value(detail).unwrap();
        let mut t = tenant(json!({"name": "acme", "status": "suspended"}));
        t["resources"] = json!([]);
        let t: TenantDetail = serde_json::from_value(t).unwrap();
        let out = timeline(Some(&t), &[], Some(&detail), Utc::now());
        assert!(out.contains("tenant 'acme' is suspended"), "{out}");
        assert!(
            out.contains("✘  2. postgres  failed        attempts 3            connection refused"),
            "{out}"
        );
        assert!(out.contains("00:12:01  postgres  failed"), "{out}");
    }
}
