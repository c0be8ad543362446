use super::*;

const GOOD: &str = r#"
default = "basic"

[plans.basic]
tier = "standard"
steps = ["storage", "postgres"]

[plans.full]
tier = "enterprise"
steps = ["identity", "postgres", "migrate", "mongo", "qdrant", "storage"]
[plans.full.postgres]
mode = "database"
template = "basic"
"#;

fn err(text: &str) -> CatalogueError {
    Catalogue::parse("plans.toml", text).expect_err("should be refused")
}

#[test]
fn the_builtin_catalogue_reproduces_every_step_as_its_default_plan() {
    let c = Catalogue::builtin();
    let plan = c.resolve(None).unwrap();
    assert_eq!(plan.name, "enterprise");
    assert_eq!(plan.tier, Tier::Enterprise);
    assert_eq!(plan.steps, OPTIONAL_STEPS);
    assert_eq!(plan.postgres.template, "basic");
    let names: Vec<&str> = c.plans.keys().map(String::as_str).collect();
    assert_eq!(names, ["enterprise", "hybrid", "standard"]);
    for (name, tier, mode) in [
        ("standard", Tier::Standard, PostgresMode::Schema),
        ("hybrid", Tier::Hybrid, PostgresMode::Database),
    ] {
        let p = c.resolve(Some(name)).unwrap();
        assert_eq!((p.tier, p.postgres.mode), (tier, mode), "{name}");
        assert_eq!(
            (p.identity, p.mongo, p.qdrant),
            (
                IdentityMode::Organization,
                MongoMode::Shared,
                QdrantMode::Shared
            ),
            "{name}"
        );
        assert_eq!(p.steps, OPTIONAL_STEPS, "{name}");
    }
}

#[test]
fn plans_resolve_with_defaults_and_the_engines_step_order() {
    let c = Catalogue::parse("plans.toml", GOOD).unwrap();
    let basic = c.resolve(None).unwrap();
    assert_eq!(basic.steps, ["postgres", "storage"]);
    assert!(basic.runs("validate") && basic.runs("postgres") && !basic.runs("identity"));
    assert_eq!(basic.identity, IdentityMode::Realm);
    assert_eq!(basic.postgres.template, "basic");
    assert_eq!(c.resolve(Some("full")).unwrap().steps.len(), 6);
    assert_eq!(c.step_names().len(), 6);
}

#[test]
fn organization_identity_and_shared_qdrant_are_modes() {
    let text = GOOD.replace(
        "[plans.full.postgres]",
        "[plans.full.identity]\nmode = \"organization\"\n[plans.full.qdrant]\nmode = \"shared\"\n[plans.full.postgres]",
    );
    let c = Catalogue::parse("plans.toml", &text).unwrap();
    let full = c.resolve(Some("full")).unwrap();
    assert_eq!(full.identity, IdentityMode::Organization);
    assert_eq!(full.qdrant, QdrantMode::Shared);
}

#[test]
fn an_unknown_plan_names_the_field_and_the_known_plans() {
    let c = Catalogue::parse("plans.toml", GOOD).unwrap();
    let e = c.resolve(Some("gold")).unwrap_err();
    assert_eq!(e.field, "plan");
    assert!(
        e.message.contains("'gold'") && e.message.contains("basic, full"),
        "{e}"
    );
}

#[test]
fn an_unknown_step_is_refused_at_its_line() {
    let e = err(&GOOD.replace(r#"["storage", "postgres"]"#, r#"["storage", "terraform"]"#));
    assert_eq!((e.file.as_str(), e.line), ("plans.toml", 6), "{e}");
    assert!(e.message.contains("unknown step 'terraform'"), "{e}");
}

#[test]
fn an_unknown_mode_is_refused_at_its_line() {
    let e = err(&GOOD.replace(r#"mode = "database""#, r#"mode = "sharded""#));
    assert_eq!(e.line, 12, "{e}");
    assert!(e.message.contains("sharded"), "{e}");
}

#[test]
fn a_duplicate_plan_is_refused_at_its_line() {
    let e = err(&format!(
        "{GOOD}\n[plans.basic]\ntier = \"hybrid\"\nsteps = []\n"
    ));
    assert_eq!(e.line, 15, "{e}");
    assert!(e.message.to_lowercase().contains("duplicate"), "{e}");
}

#[test]
fn an_unknown_template_key_is_refused_at_its_line() {
    let e = err(&GOOD.replace(r#"template = "basic""#, r#"template = "erp""#));
    assert_eq!(e.line, 13, "{e}");
    assert!(e.message.contains("unknown template key 'erp'"), "{e}");
}

#[test]
fn a_file_that_is_not_toml_is_refused_with_its_line() {
    let e = err("default: basic\nplans:\n  basic: {}\n");
    assert_eq!(e.line, 1, "{e}");
    assert!(e.to_string().starts_with("plans.toml:1:"), "{e}");
}

#[test]
fn other_mistakes_are_refused_too() {
    for (text, needle) in [
        (
            GOOD.replace(r#"default = "basic""#, r#"default = "gold""#),
            "default plan 'gold'",
        ),
        (
            GOOD.replace(r#"tier = "standard""#, r#"tier = "platinum""#),
            "platinum",
        ),
        (
            GOOD.replace(r#"["storage", "postgres"]"#, r#"["migrate"]"#),
            "needs step 'postgres'",
        ),
        (
            GOOD.replace(r#"["storage", "postgres"]"#, r#"["storage", "storage"]"#),
            "listed twice",
        ),
        (
            GOOD.replace(
                "tier = \"standard\"",
                "tier = \"standard\"\ncolour = \"red\"",
            ),
            "colour",
        ),
        (
            GOOD.replace("[plans.basic]", "[plans.\"a b\"]"),
            "plan name 'a b'",
        ),
        ("default = \"x\"\n[plans]\n".to_owned(), "defines no plan"),
    ] {
        let e = err(&text);
        assert!(e.message.contains(needle), "{needle}: {e}");
    }
}

const CUSTOM: &str = r#"
default = "basic"

[http_steps.dns]
start = "http://executor:8080/dns"
undo = "http://executor:8080/dns/undo"

[http_steps.infra]
start = "https://executor/infra"
timeout_secs = 1200

[plans.basic]
tier = "standard"
steps = ["dns", "storage", "infra", "postgres"]
"#;

#[test]
fn custom_steps_run_last_in_the_plans_order_with_their_definitions() {
    let c = Catalogue::parse("plans.toml", CUSTOM).unwrap();
    let basic = c.resolve(None).unwrap();
    assert_eq!(basic.steps, ["postgres", "storage", "dns", "infra"]);
    let names: Vec<&str> = basic.http.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["dns", "infra"]);
    let dns = basic.http_step("dns").unwrap();
    assert_eq!(dns.undo.as_deref(), Some("http://executor:8080/dns/undo"));
    assert_eq!(dns.timeout_secs, 1800, "half an hour by default");
    assert_eq!(basic.http_step("infra").unwrap().timeout_secs, 1200);
    assert!(basic.http_step("storage").is_none());
    let timeline =
        crate::plan::plan_provision_for(&basic, |_| true, crate::backend::Backend::Folder);
    let names: Vec<&str> = timeline.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(
        &names[8..],
        ["storage", "dns", "infra", "record", "activate"],
        "after the resource steps, before record"
    );
    // A run stores the plan as JSON; one stored before custom steps
    // existed reads back with none.
    let mut stored = serde_json::to_value(&basic).unwrap();
    stored.as_object_mut().unwrap().remove("http");
    let old: Plan = serde_json::from_value(stored).unwrap();
    assert!(old.http.is_empty());
}

#[test]
fn bad_custom_steps_are_refused_with_their_line() {
    let e = err(&CUSTOM.replace("https://executor/infra", "executor/infra"));
    assert_eq!(e.line, 9, "{e}");
    assert!(e.message.contains("not an absolute http(s) URL"), "{e}");
    let e = err(&CUSTOM
        .replace("[http_steps.dns]", "[http_steps.record]")
        .replace("\"dns\", ", ""));
    assert!(e.message.contains("name of a built-in step"), "{e}");
    let e = err(&CUSTOM.replace("[http_steps.dns]", "[http_steps.Dns]"));
    assert!(e.message.contains("a-z, 0-9"), "{e}");
    let e = err(&CUSTOM.replace("timeout_secs = 1200", "timeout_secs = 0"));
    assert!(e.message.contains("timeout_secs"), "{e}");
    let e = err(&CUSTOM.replace("\"infra\", \"postgres\"", "\"infra\", \"cdn\""));
    assert!(e.message.contains("unknown step 'cdn'"), "{e}");
    assert!(e.message.contains("[http_steps]"), "{e}");
    let e = err(&CUSTOM.replace("timeout_secs = 1200", "retries = 3"));
    assert!(e.message.contains("unknown field"), "{e}");
}
