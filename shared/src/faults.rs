//! Fault injection for chaos tests and drills (`LANDLORD_FAULTS`).
//!
//! Format: comma-separated `step:kind[:arg]`, for example
//! `postgres:transient:2,storage:permanent-after,migrate:sleep-after:5000`.
//! Faults apply to forward runs, except `undo-permanent`, which fails the
//! step's compensation, and `delay-claim:<ms>`, which delays the claim of
//! the step's attempt.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Attempts 1..=n fail with a transient error before the step runs.
    Transient(u32),
    /// Every attempt fails permanently before the step runs.
    Permanent,
    /// The step runs, then the attempt fails permanently: partial work exists.
    PermanentAfter,
    /// The step runs, then sleeps before reporting success (a window to kill
    /// the worker in).
    SleepAfter(Duration),
    Panic,
    /// Never returns; the step timeout must end it.
    Hang,
    /// Every undo attempt of the step fails permanently.
    UndoPermanent,
    /// The worker waits this long before it claims the step: a window in
    /// which to pause it, so that its job is re-queued and taken over
    /// before it claims.
    DelayClaim(Duration),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub step: String,
    pub kind: FaultKind,
}

pub fn parse_faults(raw: &str) -> Result<Vec<Fault>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let mut parts = item.split(':');
            let step = parts.next().unwrap_or_default().to_owned();
            let kind = parts.next().unwrap_or_default();
            let arg = parts.next();
            let num = |what: &str| -> Result<u64, String> {
                arg.ok_or(format!("'{item}': {what} needs a number"))?
                    .parse()
                    .map_err(|_| format!("'{item}': not a number"))
            };
            let kind = match kind {
                "transient" => FaultKind::Transient(
                    u32::try_from(num("transient")?).map_err(|e| e.to_string())?,
                ),
                "permanent" => FaultKind::Permanent,
                "permanent-after" => FaultKind::PermanentAfter,
                "sleep-after" => FaultKind::SleepAfter(Duration::from_millis(num("sleep-after")?)),
                "panic" => FaultKind::Panic,
                "hang" => FaultKind::Hang,
                "undo-permanent" => FaultKind::UndoPermanent,
                "delay-claim" => FaultKind::DelayClaim(Duration::from_millis(num("delay-claim")?)),
                other => return Err(format!("'{item}': unknown fault kind '{other}'")),
            };
            Ok(Fault { step, kind })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_list() {
        let f = parse_faults("postgres:transient:2, storage:sleep-after:50").unwrap();
        assert_eq!(f[0].kind, FaultKind::Transient(2));
        assert_eq!(f[1].kind, FaultKind::SleepAfter(Duration::from_millis(50)));
        assert!(parse_faults("x:boom").is_err());
        assert!(parse_faults("").unwrap().is_empty());
    }
}
