//! Reading a catalogue file: TOML, because it is what Rust tooling already
//! speaks (Cargo), its parser reports the line of every error, including
//! the ones found after parsing (`toml::Spanned`), and serde_yaml, the
//! usual YAML crate, is archived.

use super::{
    Catalogue, HttpStep, IdentityMode, MongoMode, Naming, OPTIONAL_STEPS, Plan, PostgresMode,
    PostgresPlan, QdrantMode, StorageMode, TEMPLATE_KEYS, Tier,
};
use crate::request::valid_plan;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

/// What is wrong with a catalogue, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct CatalogueError {
    pub file: String,
    /// 1-based; 0 when the error has no place in the file.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    default: Spanned<String>,
    plans: BTreeMap<String, Spanned<PlanDoc>>,
    #[serde(default)]
    http_steps: BTreeMap<String, Spanned<HttpStepDoc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpStepDoc {
    start: Spanned<String>,
    undo: Option<Spanned<String>>,
    #[serde(default = "half_an_hour")]
    timeout_secs: u64,
}

fn half_an_hour() -> u64 {
    1800
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanDoc {
    tier: Tier,
    #[serde(default)]
    description: String,
    #[serde(default = "prefix")]
    naming: Naming,
    steps: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    identity: ModeDoc<IdentityMode>,
    #[serde(default)]
    postgres: PostgresDoc,
    #[serde(default)]
    mongo: ModeDoc<MongoMode>,
    #[serde(default)]
    qdrant: ModeDoc<QdrantMode>,
    #[serde(default)]
    storage: ModeDoc<StorageMode>,
}

fn prefix() -> Naming {
    Naming::Prefix
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeDoc<M> {
    mode: M,
}

impl Default for ModeDoc<IdentityMode> {
    fn default() -> Self {
        Self {
            mode: IdentityMode::Realm,
        }
    }
}

impl Default for ModeDoc<MongoMode> {
    fn default() -> Self {
        Self {
            mode: MongoMode::Database,
        }
    }
}

impl Default for ModeDoc<QdrantMode> {
    fn default() -> Self {
        Self {
            mode: QdrantMode::Collection,
        }
    }
}

impl Default for ModeDoc<StorageMode> {
    fn default() -> Self {
        Self {
            mode: StorageMode::Dedicated,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostgresDoc {
    #[serde(default = "database")]
    mode: PostgresMode,
    #[serde(default = "basic")]
    template: Spanned<String>,
}

fn database() -> PostgresMode {
    PostgresMode::Database
}

fn basic() -> Spanned<String> {
    Spanned::new(0..0, "basic".to_owned())
}

impl Default for PostgresDoc {
    fn default() -> Self {
        Self {
            mode: database(),
            template: basic(),
        }
    }
}

pub(super) fn parse(source: &str, text: &str) -> Result<Catalogue, CatalogueError> {
    let at = |span: Option<Range<usize>>, message: String| {
        let (line, column) = span.map_or((0, 0), |s| line_col(text, s.start));
        CatalogueError {
            file: source.to_owned(),
            line,
            column,
            message,
        }
    };
    let doc: FileDoc = toml::from_str(text).map_err(|e| at(e.span(), e.message().to_owned()))?;
    let http_steps = http_steps(doc.http_steps).map_err(|(span, msg)| at(Some(span), msg))?;
    let mut plans = BTreeMap::new();
    for (name, plan) in doc.plans {
        let span = plan.span();
        let plan = plan.into_inner();
        if !valid_plan(&name) {
            return Err(at(
                Some(span),
                format!(
                    "plan name '{name}' must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-'"
                ),
            ));
        }
        let mut steps: Vec<String> = Vec::new();
        let mut http = Vec::new();
        for step in plan.steps.get_ref() {
            let s = step.get_ref();
            if let Some(custom) = http_steps.get(s) {
                if !http.contains(custom) {
                    http.push(custom.clone());
                }
            } else if !OPTIONAL_STEPS.contains(&s.as_str()) {
                return Err(at(
                    Some(step.span()),
                    format!(
                        "plan '{name}': unknown step '{s}'; a plan chooses among {} and the \
                         catalogue's [http_steps]",
                        OPTIONAL_STEPS.join(", ")
                    ),
                ));
            }
            if steps.contains(s) {
                return Err(at(
                    Some(step.span()),
                    format!("plan '{name}': step '{s}' is listed twice"),
                ));
            }
            steps.push(s.clone());
        }
        for needy in ["migrate", "check_schema"] {
            if steps.iter().any(|s| s == needy) && !steps.iter().any(|s| s == "postgres") {
                return Err(at(
                    Some(plan.steps.span()),
                    format!("plan '{name}': step '{needy}' needs step 'postgres'"),
                ));
            }
        }
        // The engine's order, whatever the file's; custom steps last, in
        // the file's order (a stable sort).
        steps.sort_by_key(|s| {
            OPTIONAL_STEPS
                .iter()
                .position(|o| o == s)
                .unwrap_or(OPTIONAL_STEPS.len())
        });
        let template = plan.postgres.template;
        if !TEMPLATE_KEYS.contains(&template.get_ref().as_str()) {
            let span = Some(template.span())
                .filter(|s| !s.is_empty())
                .unwrap_or(span);
            return Err(at(
                Some(span),
                format!(
                    "plan '{name}': unknown template key '{}'; this binary builds {}",
                    template.get_ref(),
                    TEMPLATE_KEYS.join(", ")
                ),
            ));
        }
        plans.insert(
            name.clone(),
            Plan {
                name,
                tier: plan.tier,
                description: plan.description,
                naming: plan.naming,
                steps,
                http,
                identity: plan.identity.mode,
                postgres: PostgresPlan {
                    mode: plan.postgres.mode,
                    template: template.into_inner(),
                },
                mongo: plan.mongo.mode,
                qdrant: plan.qdrant.mode,
                storage: plan.storage.mode,
            },
        );
    }
    if plans.is_empty() {
        return Err(at(
            None,
            "the catalogue defines no plan ([plans.NAME])".to_owned(),
        ));
    }
    if !plans.contains_key(doc.default.get_ref()) {
        return Err(at(
            Some(doc.default.span()),
            format!("default plan '{}' is not defined", doc.default.get_ref()),
        ));
    }
    Ok(Catalogue {
        source: source.to_owned(),
        default: doc.default.into_inner(),
        plans,
        http_steps,
    })
}

/// Checks the custom steps: names that cannot be mistaken for a built-in
/// step, and absolute http(s) URLs.
fn http_steps(
    docs: BTreeMap<String, Spanned<HttpStepDoc>>,
) -> Result<BTreeMap<String, HttpStep>, (Range<usize>, String)> {
    let mut steps = BTreeMap::new();
    for (name, doc) in docs {
        let span = doc.span();
        let doc = doc.into_inner();
        let valid = !name.is_empty()
            && name.len() <= 40
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err((
                span,
                format!("http step name '{name}' must be 1 to 40 characters of a-z, 0-9, '_'"),
            ));
        }
        if crate::plan::is_builtin_step(&name) {
            return Err((
                span,
                format!("http step '{name}' has the name of a built-in step"),
            ));
        }
        if doc.timeout_secs == 0 {
            return Err((
                span,
                format!("http step '{name}': timeout_secs must be at least 1"),
            ));
        }
        for url in std::iter::once(&doc.start).chain(doc.undo.as_ref()) {
            match url::Url::parse(url.get_ref()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => {}
                _ => {
                    return Err((
                        url.span(),
                        format!(
                            "http step '{name}': '{}' is not an absolute http(s) URL",
                            url.get_ref()
                        ),
                    ));
                }
            }
        }
        steps.insert(
            name.clone(),
            HttpStep {
                name,
                start: doc.start.into_inner(),
                undo: doc.undo.map(Spanned::into_inner),
                timeout_secs: doc.timeout_secs,
            },
        );
    }
    Ok(steps)
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}
