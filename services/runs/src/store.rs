//! All SQL of the runs service.

use verdict_store::Migrations;

pub const MIGRATIONS: Migrations = Migrations(&[]);
