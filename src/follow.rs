//! Follows a run live: a redrawn table on a terminal, one line per change
//! otherwise, then a summary of every step.

use landlord_shared::catalogue::Plan;
use landlord_shared::model::{Run, StepRow};
use landlord_shared::store;
use sqlx::PgPool;
use std::io::{IsTerminal, Write};
use std::time::Duration;
use uuid::Uuid;

fn icon(status: &str) -> &'static str {
    match status {
        "completed" => "✔",
        "running" => "▶",
        "retrying" => "↻",
        "failed" => "✘",
        "skipped" => "–",
        "compensating" => "↶",
        "compensated" => "↺",
        _ => "·",
    }
}

fn step_line(s: &StepRow) -> String {
    let dur = s
        .duration_ms()
        .map(|ms| format!("{ms} ms"))
        .unwrap_or_default();
    let note = match (s.status.as_str(), &s.waiting_for) {
        ("pending" | "retrying", Some(why)) => why.clone(),
        ("completed" | "pending" | "running", _) => String::new(),
        _ => s.last_error.clone().unwrap_or_default(),
    };
    format!(
        "{} {:>2}. {:<9} {:<12} attempts {:<2} {:>8}  {}",
        icon(s.status.as_str()),
        s.position + 1,
        s.name,
        s.status,
        s.attempts,
        dur,
        note
    )
}

/// `line` cut to `width` columns (an ellipsis marks the cut). Redrawing
/// moves the cursor up one row per line, so a line that wrapped would
/// leave copies of itself behind.
fn fit(line: &str, width: usize) -> String {
    if line.chars().count() <= width {
        return line.to_owned();
    }
    let mut cut: String = line.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The terminal's width, one column spare (some terminals wrap when the
/// last column is written).
fn width() -> usize {
    terminal_size::terminal_size()
        .map_or(80, |(w, _)| usize::from(w.0))
        .max(20)
        - 1
}

/// Lines redrawn in place on a terminal, each cut to its width.
#[derive(Default)]
pub struct LiveTable {
    drawn: usize,
}

impl LiveTable {
    pub fn draw(&mut self, lines: &[String]) -> std::io::Result<()> {
        let width = width();
        let mut out = std::io::stdout().lock();
        if self.drawn > 0 {
            write!(out, "\x1b[{}A", self.drawn)?;
        }
        for l in lines {
            writeln!(out, "\x1b[2K{}", fit(l, width))?;
        }
        self.drawn = lines.len();
        out.flush()
    }
}

/// Polls until the run finishes (or `timeout`), drawing progress.
pub async fn follow(pool: &PgPool, run_id: Uuid, timeout: Duration) -> anyhow::Result<Run> {
    let tty = std::io::stdout().is_terminal();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut table = LiveTable::default();
    let mut seen: Vec<(String, landlord_shared::store::StepStatus, i32)> = Vec::new();
    loop {
        let run = store::run_by_id(pool, run_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("run vanished"))?;
        let steps = store::steps_of_run(pool, run_id).await?;
        if tty {
            let mut lines: Vec<String> = steps.iter().map(step_line).collect();
            lines.push(format!("run {}: {}", run.id, run.status));
            table.draw(&lines)?;
        } else {
            let mut out = std::io::stdout().lock();
            for s in &steps {
                let key = (s.name.clone(), s.status, s.attempts);
                if !seen.contains(&key) {
                    writeln!(out, "{}", step_line(s))?;
                    seen.push(key);
                }
            }
            out.flush()?;
        }
        if run.is_finished() {
            return Ok(run);
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("run {run_id} still {} after {timeout:?}", run.status);
        }
        tokio::time::sleep(Duration::from_millis(if tty { 100 } else { 250 })).await;
    }
}

/// The run's plan as it was resolved when the run was created.
pub fn plan_line(plan: &Plan) -> String {
    format!(
        "plan {} (tier {}, {}): identity {}, postgres {} from template {}, mongo {}, qdrant {}, storage {}; optional steps: {}",
        plan.name,
        plan.tier.as_str(),
        plan.tier.deployment(),
        mode(&plan.identity),
        mode(&plan.postgres.mode),
        plan.postgres.template,
        mode(&plan.mongo),
        mode(&plan.qdrant),
        mode(&plan.storage),
        plan.steps.join(", ")
    )
}

/// A mode as the catalogue spells it.
fn mode(m: &impl serde::Serialize) -> String {
    serde_json::to_value(m)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub async fn print_summary(pool: &PgPool, run: &Run) -> anyhow::Result<()> {
    println!(
        "\nrun {} ({}) for tenant '{}': {}",
        run.id, run.workflow_id, run.tenant_name, run.status
    );
    if let Some(plan) = &run.plan {
        println!("{}", plan_line(plan));
    }
    if let Some(err) = &run.error {
        println!("error: {err}");
    }
    for s in store::steps_of_run(pool, run.id).await? {
        println!("{}", step_line(&s));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn lines_fit_the_width_on_char_boundaries() {
        assert_eq!(fit("short", 10), "short");
        let cut = fit(
            "– 3. identity skipped: not configured (KEYCLOAK_BASE_URL)",
            20,
        );
        assert_eq!(cut.chars().count(), 20);
        assert!(cut.ends_with('…'));
    }
}
