//! The store's status enums and the schema's CHECK constraints name the
//! same words: a migration that adds a status the code cannot decode (or
//! an enum variant the schema refuses) fails here, not in production.

use crate::harness::TestEnv;
use landlord_shared::store::status::checked_columns;
use std::collections::BTreeSet;

/// The quoted words of a CHECK constraint on `table.column`.
async fn allowed(env: &TestEnv, table: &str, column: &str) -> BTreeSet<String> {
    let defs: Vec<String> = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)
         WHERE c.contype = 'c' AND c.conrelid = $1::regclass AND a.attname = $2",
    )
    .bind(table)
    .bind(column)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(defs.len(), 1, "{table}.{column}: {defs:?}");
    defs[0]
        .split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn every_status_enum_matches_its_check_constraint() {
    let env = TestEnv::new(&[]).await;
    for (table, column, words) in checked_columns() {
        let ours: BTreeSet<String> = words.iter().map(|w| (*w).to_owned()).collect();
        assert_eq!(allowed(&env, table, column).await, ours, "{table}.{column}");
    }
}
