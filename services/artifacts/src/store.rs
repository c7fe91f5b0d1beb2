//! All SQL of the artifacts service.

use verdict_store::Migrations;

pub const MIGRATIONS: Migrations = Migrations(&[]);
