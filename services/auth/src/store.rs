//! All SQL of the auth service.

use verdict_store::Migrations;

pub const MIGRATIONS: Migrations = Migrations(&[]);
