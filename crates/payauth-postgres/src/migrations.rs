//! The schema, shipped with the crate and applied in order.

use deadpool_postgres::Client;
use payauth_core::{Error, ErrorKind};

/// Every migration, `(version, SQL)`, in the order applied. A database
/// records in `payauth_schema_migrations` which it has; a new version of
/// this crate only ever appends.
pub const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../migrations/0001_tokens.sql")),
    (2, include_str!("../migrations/0002_forget_marks.sql")),
];

/// One advisory lock for every payauth migrator (an arbitrary constant):
/// replicas starting together apply each migration once.
const LOCK: i64 = 0x7061_7961_7574_6831;

/// Applies the migrations `client`'s database lacks; how many.
pub(crate) async fn apply(client: &mut Client) -> Result<usize, Error> {
    let tx = client
        .transaction()
        .await
        .map_err(|e| crate::store::pg_error("migrate", &e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
        .await
        .map_err(|e| crate::store::pg_error("migrate", &e))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS payauth_schema_migrations (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await
    .map_err(|e| crate::store::pg_error("migrate", &e))?;
    let current: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM payauth_schema_migrations",
            &[],
        )
        .await
        .map_err(|e| crate::store::pg_error("migrate", &e))?
        .get(0);
    if current > MIGRATIONS.last().map_or(0, |(version, _)| *version) {
        return Err(Error::new(ErrorKind::Store).with_description(format!(
            "the database's payauth schema is at version {current}, newer than this payauth-postgres knows"
        )));
    }
    let mut applied = 0;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql)
            .await
            .map_err(|e| crate::store::pg_error("migrate", &e))?;
        tx.execute(
            "INSERT INTO payauth_schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(|e| crate::store::pg_error("migrate", &e))?;
        applied += 1;
    }
    tx.commit()
        .await
        .map_err(|e| crate::store::pg_error("migrate", &e))?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        for (index, (version, sql)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(usize::try_from(*version).unwrap(), index + 1);
            assert!(sql.contains("payauth_"), "{version}");
        }
    }
}
