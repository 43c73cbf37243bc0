//! A PostgreSQL database of a test's own, on the machine's server (127.0.0.1:5432).

use std::process::Command;

/// A fresh PostgreSQL database on 127.0.0.1:5432 for one test, dropped afterwards.
pub struct PgDatabase(String);

impl PgDatabase {
    pub fn create() -> PgDatabase {
        let name = format!("switchyard_e2e_{}_{}", std::process::id(), free_suffix());
        psql(&format!("CREATE DATABASE {name}"));
        PgDatabase(name)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.0)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0));
    }
}

fn free_suffix() -> u16 {
    crate::free_port()
}

fn psql(sql: &str) {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .args(["-c", sql])
        .output()
        .expect("psql (PostgreSQL's client) runs");
    assert!(
        out.status.success(),
        "psql -c {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
