//! Both backends' migrations must build the same schema: the same tables,
//! the same columns in the same order, the same unique keys.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use shoulder::db::{DbConnection, run_migrations};

use crate::support::PgDatabase;

#[derive(QueryableByName)]
struct ColumnRow {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Integer)]
    position: i32,
}

#[derive(QueryableByName)]
struct IndexColumnRow {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    index_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Integer)]
    position: i32,
}

/// Table -> its columns in order, and table -> sorted list of unique keys.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    columns: BTreeMap<String, Vec<String>>,
    unique_keys: BTreeMap<String, Vec<(String, Vec<String>)>>,
}

fn shape(columns: Vec<ColumnRow>, index_columns: Vec<IndexColumnRow>) -> Shape {
    let mut by_table: BTreeMap<String, Vec<(i32, String)>> = BTreeMap::new();
    for row in columns {
        by_table
            .entry(row.table_name)
            .or_default()
            .push((row.position, row.column_name));
    }
    let columns = by_table
        .into_iter()
        .map(|(table, mut cols)| {
            cols.sort();
            (table, cols.into_iter().map(|(_, name)| name).collect())
        })
        .collect();
    let mut indexes: BTreeMap<(String, String), Vec<(i32, String)>> = BTreeMap::new();
    for row in index_columns {
        indexes
            .entry((row.table_name, row.index_name))
            .or_default()
            .push((row.position, row.column_name));
    }
    let mut unique_keys: BTreeMap<String, Vec<(String, Vec<String>)>> = BTreeMap::new();
    for ((table, index), mut cols) in indexes {
        cols.sort();
        unique_keys
            .entry(table)
            .or_default()
            .push((index, cols.into_iter().map(|(_, name)| name).collect()));
    }
    Shape {
        columns,
        unique_keys,
    }
}

fn sqlite_shape(conn: &mut SqliteConnection) -> Shape {
    let columns = diesel::sql_query(
        "SELECT m.name AS table_name, p.name AS column_name, p.cid AS position
         FROM sqlite_master m JOIN pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'
           AND m.name <> '__diesel_schema_migrations'",
    )
    .load::<ColumnRow>(conn)
    .expect("sqlite columns");
    let index_columns = diesel::sql_query(
        "SELECT m.name AS table_name, il.name AS index_name, ii.name AS column_name, ii.seqno AS position
         FROM sqlite_master m
         JOIN pragma_index_list(m.name) il
         JOIN pragma_index_info(il.name) ii
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'
           AND m.name <> '__diesel_schema_migrations'
           AND il.\"unique\" = 1 AND il.origin <> 'pk'",
    )
    .load::<IndexColumnRow>(conn)
    .expect("sqlite unique indexes");
    shape(columns, index_columns)
}

fn postgres_shape(conn: &mut PgConnection) -> Shape {
    let columns = diesel::sql_query(
        "SELECT table_name::text AS table_name, column_name::text AS column_name,
                ordinal_position::int AS position
         FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'",
    )
    .load::<ColumnRow>(conn)
    .expect("postgres columns");
    let index_columns = diesel::sql_query(
        "SELECT t.relname::text AS table_name, i.relname::text AS index_name,
                a.attname::text AS column_name, k.ord::int AS position
         FROM pg_index x
         JOIN pg_class i ON i.oid = x.indexrelid
         JOIN pg_class t ON t.oid = x.indrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
         CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
         WHERE n.nspname = 'public' AND x.indisunique AND NOT x.indisprimary
           AND t.relname <> '__diesel_schema_migrations'",
    )
    .load::<IndexColumnRow>(conn)
    .expect("postgres unique indexes");
    shape(columns, index_columns)
}

#[test]
fn both_backends_build_the_same_tables_columns_and_unique_keys() {
    let Some(pg) = PgDatabase::create_blocking() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite_path = dir.path().join("schema.db");

    let mut sqlite = DbConnection::Sqlite(
        SqliteConnection::establish(sqlite_path.to_str().expect("utf-8 path"))
            .expect("sqlite opens"),
    );
    let mut postgres =
        DbConnection::Postgresql(PgConnection::establish(pg.url()).expect("postgres opens"));
    assert!(run_migrations(&mut sqlite).expect("sqlite migrates") > 0);
    assert!(run_migrations(&mut postgres).expect("postgres migrates") > 0);
    assert_eq!(run_migrations(&mut sqlite).expect("idempotent"), 0);
    assert_eq!(run_migrations(&mut postgres).expect("idempotent"), 0);

    let (DbConnection::Sqlite(sqlite), DbConnection::Postgresql(postgres)) =
        (&mut sqlite, &mut postgres)
    else {
        unreachable!("built above");
    };
    let sqlite_shape = sqlite_shape(sqlite);
    let postgres_shape = postgres_shape(postgres);

    assert_eq!(sqlite_shape.columns, postgres_shape.columns);
    assert_eq!(sqlite_shape.unique_keys, postgres_shape.unique_keys);

    // The keys our promises rest on (DESIGN.md): one round per circle and
    // slot, one delivery per round, member and kind.
    let keys = |table: &str| -> Vec<Vec<String>> {
        sqlite_shape.unique_keys[table]
            .iter()
            .map(|(_, cols)| cols.clone())
            .collect()
    };
    assert!(keys("rounds").contains(&vec!["circle_id".to_string(), "slot".to_string()]));
    assert!(keys("deliveries").contains(&vec![
        "round_id".to_string(),
        "membership_id".to_string(),
        "kind".to_string()
    ]));
    assert!(keys("memberships").contains(&vec!["circle_id".to_string(), "person_id".to_string()]));
    for table in [
        "people",
        "circles",
        "memberships",
        "invites",
        "sign_in_tokens",
        "sessions",
        "rounds",
        "check_ins",
        "commitments",
        "follow_throughs",
        "support_messages",
        "away_periods",
        "prompt_usage",
        "deliveries",
        "suppressed_addresses",
        "rate_limits",
    ] {
        assert!(
            sqlite_shape.columns.contains_key(table),
            "missing table {table}"
        );
    }
}
