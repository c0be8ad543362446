//! Property test against the real server: our identifier and literal
//! quoting round-trips any string, so nothing reaches SQL unquoted.

use crate::harness::admin_pool;
use landlord_shared::tenant::{quote_ident, quote_literal};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sqlx::{Column, Row};

#[test]
fn quoting_round_trips_hostile_strings_through_postgres() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pool = rt.block_on(admin_pool());
    let mut runner = TestRunner::new(Config {
        cases: 300,
        ..Config::default()
    });
    let strategy = prop_oneof![
        any::<String>(),
        "[a-z'\"; -]{1,20}",
        Just("x\"; DROP DATABASE postgres; --".to_owned()),
        Just("'); DROP TABLE tenants; --".to_owned()),
        Just("../../etc/passwd".to_owned()),
    ]
    .prop_filter(
        "Postgres text has no NUL; identifiers are 1..=63 bytes",
        |s| !s.contains('\0') && !s.is_empty() && s.len() <= 63,
    );
    runner
        .run(&strategy, |s| {
            let sql = format!("SELECT {} AS {}", quote_literal(&s), quote_ident(&s));
            let row = rt
                .block_on(sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).fetch_one(&pool))
                .map_err(|e| TestCaseError::fail(format!("{s:?}: {e}")))?;
            prop_assert_eq!(row.columns()[0].name(), s.as_str());
            prop_assert_eq!(row.get::<String, _>(0), s);
            Ok(())
        })
        .unwrap();
}
