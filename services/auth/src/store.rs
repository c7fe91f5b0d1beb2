//! All SQL of the auth service. Functions take a connection so callers choose the
//! transaction; times are Unix seconds.

use verdict_contracts::auth::Role;
use verdict_contracts::ids::{ProjectId, SessionId, TokenId, UserId};
use verdict_store::rusqlite::{self, params, Connection, OptionalExtension, Row};
use verdict_store::{parsed, Migrations};

use crate::keys::SigningKey;

pub const MIGRATIONS: Migrations = Migrations(&[
    include_str!("../migrations/001_users_projects_tokens_keys.sql"),
    include_str!("../migrations/002_login_failures.sql"),
    // The table of idempotency keys, which every service that remembers answers shares.
    verdict_store::idempotency::MIGRATION,
]);

// ---- users ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: i64,
}

impl UserRow {
    /// A new, enabled user with a fresh id.
    pub fn new(
        email: String,
        name: String,
        password_hash: String,
        is_admin: bool,
        created_at: i64,
    ) -> Self {
        Self {
            id: UserId::generate(),
            email,
            name,
            password_hash,
            is_admin,
            disabled: false,
            created_at,
        }
    }
}

const USER_COLUMNS: &str = "id, email, name, password_hash, is_admin, disabled, created_at";

fn user_row(row: &Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: row.get(0)?,
        email: row.get(1)?,
        name: row.get(2)?,
        password_hash: row.get(3)?,
        is_admin: row.get(4)?,
        disabled: row.get(5)?,
        created_at: row.get(6)?,
    })
}

pub fn count_users(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT count(*) FROM users", [], |row| row.get(0))
}

pub fn user_by_email(conn: &Connection, email: &str) -> rusqlite::Result<Option<UserRow>> {
    conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE email = ?1"
    ))?
    .query_row([email], user_row)
    .optional()
}

pub fn user_by_id(conn: &Connection, id: UserId) -> rusqlite::Result<Option<UserRow>> {
    conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
        .query_row([id], user_row)
        .optional()
}

/// Inserts a user; `false` when the e-mail is taken.
pub fn insert_user(conn: &Connection, user: &UserRow) -> rusqlite::Result<bool> {
    let inserted = conn.execute(
        "INSERT INTO users (id, email, name, password_hash, is_admin, disabled, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6) ON CONFLICT (email) DO NOTHING",
        params![
            user.id,
            user.email,
            user.name,
            user.password_hash,
            user.is_admin,
            user.created_at
        ],
    )?;
    Ok(inserted == 1)
}

/// Disables or enables a user; `true` when that changed anything.
pub fn set_user_disabled(conn: &Connection, id: UserId, disabled: bool) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE users SET disabled = ?2 WHERE id = ?1 AND disabled <> ?2",
        params![id, disabled],
    )? == 1)
}

// ---- failed logins ---------------------------------------------------------------------

/// Until when logins of `email` from `client` are refused, if they ever were.
pub fn login_locked_until(
    conn: &Connection,
    email: &str,
    client: &str,
) -> rusqlite::Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT locked_until FROM login_failures WHERE email = ?1 AND client = ?2")?
        .query_row([email, client], |row| row.get(0))
        .optional()?
        .flatten())
}

/// Counts one more failed login of `email` from `client`, in one statement, so that
/// failures racing each other all count; returns the failures in a row so far.
pub fn count_login_failure(
    conn: &Connection,
    email: &str,
    client: &str,
    now: i64,
) -> rusqlite::Result<u32> {
    conn.prepare_cached(
        "INSERT INTO login_failures (email, client, failures, last_failed_at) VALUES (?1, ?2, 1, ?3)
         ON CONFLICT (email, client) DO UPDATE SET failures = failures + 1, last_failed_at = ?3
         RETURNING failures",
    )?
    .query_row(params![email, client, now], |row| row.get(0))
}

/// Refuses logins of `email` from `client` until `until` (or a later lock already set).
pub fn lock_login(
    conn: &Connection,
    email: &str,
    client: &str,
    until: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE login_failures SET locked_until = max(coalesce(locked_until, 0), ?3)
         WHERE email = ?1 AND client = ?2",
    )?
    .execute(params![email, client, until])?;
    Ok(())
}

pub fn clear_login_failures(conn: &Connection, email: &str, client: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM login_failures WHERE email = ?1 AND client = ?2")?
        .execute([email, client])?;
    Ok(())
}

/// Forgets failures whose last one was before `cutoff`, so guesses at many e-mails from
/// many addresses cannot grow the table without bound.
pub fn forget_login_failures_before(conn: &Connection, cutoff: i64) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM login_failures WHERE last_failed_at < ?1")?
        .execute([cutoff])
}

// ---- sessions and refresh tokens -------------------------------------------------------

pub fn insert_session(
    conn: &Connection,
    id: SessionId,
    user_id: UserId,
    now: i64,
    expires_at: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![id, user_id, now, expires_at],
    )?;
    Ok(())
}

pub fn insert_refresh_token(
    conn: &Connection,
    hash: &[u8],
    session_id: SessionId,
    now: i64,
    expires_at: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO refresh_tokens (hash, session_id, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![hash, session_id, now, expires_at],
    )?;
    Ok(())
}

/// A refresh token with the state of its session.
#[derive(Debug, Clone)]
pub struct RefreshRow {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub expires_at: i64,
    pub spent: bool,
    pub session_revoked: bool,
    /// The end of the session's lifetime, which no rotation extends.
    pub session_expires_at: i64,
}

pub fn refresh_token(conn: &Connection, hash: &[u8]) -> rusqlite::Result<Option<RefreshRow>> {
    conn.prepare_cached(
        "SELECT r.session_id, s.user_id, r.expires_at, r.spent_at IS NOT NULL, s.revoked_at IS NOT NULL,
                s.expires_at
         FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.hash = ?1",
    )?
    .query_row([hash], |row| {
        Ok(RefreshRow {
            session_id: row.get(0)?,
            user_id: row.get(1)?,
            expires_at: row.get(2)?,
            spent: row.get(3)?,
            session_revoked: row.get(4)?,
            session_expires_at: row.get(5)?,
        })
    })
    .optional()
}

pub fn spend_refresh_token(conn: &Connection, hash: &[u8], now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE refresh_tokens SET spent_at = ?2 WHERE hash = ?1",
        params![hash, now],
    )?;
    Ok(())
}

/// Revokes a session unless it already is; returns when it was revoked (`None`: no such
/// session).
pub fn revoke_session(conn: &Connection, id: SessionId, now: i64) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "UPDATE sessions SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1 RETURNING revoked_at",
    )?
    .query_row(params![id, now], |row| row.get(0))
    .optional()
}

pub fn session_is_active(conn: &Connection, id: SessionId, now: i64) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT 1 FROM sessions WHERE id = ?1 AND revoked_at IS NULL AND expires_at > ?2",
    )?
    .exists(params![id, now])
}

// ---- projects and memberships -----------------------------------------------------------

#[derive(Debug, Clone)]
pub struct ProjectRow {
    pub id: ProjectId,
    pub slug: String,
    pub name: String,
    pub created_at: i64,
}

fn project_row(row: &Row<'_>) -> rusqlite::Result<ProjectRow> {
    Ok(ProjectRow {
        id: row.get(0)?,
        slug: row.get(1)?,
        name: row.get(2)?,
        created_at: row.get(3)?,
    })
}

/// Creates a project with its first owner; `false` when the slug is taken.
pub fn insert_project(
    conn: &Connection,
    project: &ProjectRow,
    owner: UserId,
) -> rusqlite::Result<bool> {
    let inserted = conn.execute(
        "INSERT INTO projects (id, slug, name, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (slug) DO NOTHING",
        params![project.id, project.slug, project.name, project.created_at],
    )?;
    if inserted == 1 {
        conn.execute(
            "INSERT INTO memberships (project_id, user_id, role) VALUES (?1, ?2, 'owner')",
            params![project.id, owner],
        )?;
    }
    Ok(inserted == 1)
}

/// A project by id or by slug (slugs cannot look like ids).
pub fn project_by_ref(conn: &Connection, reference: &str) -> rusqlite::Result<Option<ProjectRow>> {
    conn.prepare_cached(
        "SELECT id, slug, name, created_at FROM projects WHERE id = ?1 OR slug = ?1",
    )?
    .query_row([reference], project_row)
    .optional()
}

pub fn membership(
    conn: &Connection,
    project_id: ProjectId,
    user_id: UserId,
) -> rusqlite::Result<Option<Role>> {
    conn.prepare_cached("SELECT role FROM memberships WHERE project_id = ?1 AND user_id = ?2")?
        .query_row(params![project_id, user_id], |row| parsed(row, 0))
        .optional()
}

pub fn put_membership(
    conn: &Connection,
    project_id: ProjectId,
    user_id: UserId,
    role: Role,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO memberships (project_id, user_id, role) VALUES (?1, ?2, ?3)
         ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
        params![project_id, user_id, role.as_str()],
    )?;
    Ok(())
}

pub fn delete_membership(
    conn: &Connection,
    project_id: ProjectId,
    user_id: UserId,
) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "DELETE FROM memberships WHERE project_id = ?1 AND user_id = ?2",
        params![project_id, user_id],
    )? == 1)
}

pub fn count_owners(conn: &Connection, project_id: ProjectId) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT count(*) FROM memberships WHERE project_id = ?1 AND role = 'owner'",
        [project_id],
        |row| row.get(0),
    )
}

/// A user's projects with their roles, ordered by project id, after `after`.
pub fn projects_of_user(
    conn: &Connection,
    user_id: UserId,
    after: &str,
    limit: u32,
) -> rusqlite::Result<Vec<(ProjectRow, Role)>> {
    let mut statement = conn.prepare_cached(
        "SELECT p.id, p.slug, p.name, p.created_at, m.role
         FROM memberships m JOIN projects p ON p.id = m.project_id
         WHERE m.user_id = ?1 AND m.project_id > ?2
         ORDER BY m.project_id LIMIT ?3",
    )?;
    let rows = statement.query_map(params![user_id, after, limit], |row| {
        Ok((project_row(row)?, parsed(row, 4)?))
    })?;
    rows.collect()
}

/// A project's members with their e-mail addresses and names, ordered by user id,
/// after `after`.
pub fn members_of_project(
    conn: &Connection,
    project_id: ProjectId,
    after: &str,
    limit: u32,
) -> rusqlite::Result<Vec<(UserRow, Role)>> {
    let mut statement = conn.prepare_cached(
        "SELECT u.id, u.email, u.name, u.password_hash, u.is_admin, u.disabled, u.created_at, m.role
         FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.project_id = ?1 AND m.user_id > ?2
         ORDER BY m.user_id LIMIT ?3",
    )?;
    let rows = statement.query_map(params![project_id, after, limit], |row| {
        Ok((user_row(row)?, parsed(row, 7)?))
    })?;
    rows.collect()
}

/// Every user, ordered by id, after `after` (for admins).
pub fn all_users(conn: &Connection, after: &str, limit: u32) -> rusqlite::Result<Vec<UserRow>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id > ?1 ORDER BY id LIMIT ?2"
    ))?;
    let rows = statement.query_map(params![after, limit], user_row)?;
    rows.collect()
}

/// Every project, ordered by id, after `after` (for admins).
pub fn all_projects(
    conn: &Connection,
    after: &str,
    limit: u32,
) -> rusqlite::Result<Vec<ProjectRow>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, slug, name, created_at FROM projects WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = statement.query_map(params![after, limit], project_row)?;
    rows.collect()
}

// ---- API tokens -------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct ApiTokenRow {
    pub id: TokenId,
    pub project_id: ProjectId,
    pub name: String,
    pub role: Role,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

const TOKEN_COLUMNS: &str =
    "id, project_id, name, role, created_at, expires_at, revoked_at, last_used_at";

fn api_token_row(row: &Row<'_>) -> rusqlite::Result<ApiTokenRow> {
    Ok(ApiTokenRow {
        id: parsed(row, 0)?,
        project_id: row.get(1)?,
        name: row.get(2)?,
        role: parsed(row, 3)?,
        created_at: row.get(4)?,
        expires_at: row.get(5)?,
        revoked_at: row.get(6)?,
        last_used_at: row.get(7)?,
    })
}

pub fn insert_api_token(
    conn: &Connection,
    token: &ApiTokenRow,
    hash: &[u8],
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO api_tokens (id, project_id, name, role, hash, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            token.id.to_string(),
            token.project_id,
            token.name,
            token.role.as_str(),
            hash,
            token.created_at,
            token.expires_at
        ],
    )?;
    Ok(())
}

pub fn api_token_by_hash(conn: &Connection, hash: &[u8]) -> rusqlite::Result<Option<ApiTokenRow>> {
    conn.prepare_cached(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE hash = ?1"
    ))?
    .query_row([hash], api_token_row)
    .optional()
}

pub fn api_token_in_project(
    conn: &Connection,
    project_id: ProjectId,
    id: TokenId,
) -> rusqlite::Result<Option<ApiTokenRow>> {
    conn.prepare_cached(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE project_id = ?1 AND id = ?2"
    ))?
    .query_row(params![project_id, id.to_string()], api_token_row)
    .optional()
}

/// Live (not revoked) tokens of a project, ordered by id, after `after`.
pub fn api_tokens_of_project(
    conn: &Connection,
    project_id: ProjectId,
    after: &str,
    limit: u32,
) -> rusqlite::Result<Vec<ApiTokenRow>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens
         WHERE project_id = ?1 AND id > ?2 AND revoked_at IS NULL ORDER BY id LIMIT ?3"
    ))?;
    let rows = statement.query_map(params![project_id, after, limit], api_token_row)?;
    rows.collect()
}

/// Revokes an API token unless it already is; returns when it was revoked (`None`: no
/// such token).
pub fn revoke_api_token(conn: &Connection, id: TokenId, now: i64) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1 RETURNING revoked_at",
    )?
    .query_row(params![id.to_string(), now], |row| row.get(0))
    .optional()
}

pub fn touch_api_token(conn: &Connection, id: TokenId, now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1",
        params![id.to_string(), now],
    )?;
    Ok(())
}

// ---- signing keys -----------------------------------------------------------------------

pub fn signing_keys(conn: &Connection) -> rusqlite::Result<Vec<SigningKey>> {
    let mut statement = conn.prepare(
        "SELECT kid, private_pkcs8, public_key, created_at, retired_at FROM signing_keys",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(SigningKey {
            kid: row.get(0)?,
            private_pkcs8: row.get(1)?,
            public_key: row.get(2)?,
            created_at: row.get(3)?,
            retired_at: row.get(4)?,
        })
    })?;
    rows.collect()
}

/// Retires the current keys and stores `key` as the new current one.
pub fn rotate_signing_key(conn: &Connection, key: &SigningKey, now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE signing_keys SET retired_at = ?1 WHERE retired_at IS NULL",
        [now],
    )?;
    conn.execute(
        "INSERT INTO signing_keys (kid, private_pkcs8, public_key, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![key.kid, key.private_pkcs8, key.public_key, key.created_at],
    )?;
    Ok(())
}

/// Replaces the stored private key of `kid` (sealing a key stored plain).
pub fn replace_private_key(conn: &Connection, kid: &str, stored: &[u8]) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE signing_keys SET private_pkcs8 = ?1 WHERE kid = ?2",
        params![stored, kid],
    )?;
    Ok(())
}

/// Forgets keys retired long enough ago that no token they signed is still valid.
pub fn delete_keys_retired_before(conn: &Connection, cutoff: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM signing_keys WHERE retired_at < ?1", [cutoff])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        MIGRATIONS.in_memory().unwrap()
    }

    fn plan(conn: &Connection, sql: &str) -> String {
        verdict_store::query_plan(conn, sql).unwrap()
    }

    #[test]
    fn a_users_projects_are_listed_from_the_membership_index() {
        let plan = plan(
            &conn(),
            "SELECT p.id FROM memberships m JOIN projects p ON p.id = m.project_id
             WHERE m.user_id = 'u' AND m.project_id > '' ORDER BY m.project_id LIMIT 10",
        );
        assert!(plan.contains("memberships_by_user"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    #[test]
    fn a_projects_tokens_are_listed_from_their_index() {
        let plan = plan(
            &conn(),
            "SELECT id FROM api_tokens WHERE project_id = 'p' AND id > '' AND revoked_at IS NULL ORDER BY id LIMIT 10",
        );
        assert!(plan.contains("api_tokens_by_project"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    #[test]
    fn a_second_user_with_the_same_email_is_refused() {
        let conn = conn();
        let user = UserRow::new("a@b.c".into(), "A".into(), "x".into(), false, 0);
        assert!(insert_user(&conn, &user).unwrap());
        assert!(!insert_user(
            &conn,
            &UserRow {
                id: UserId::generate(),
                ..user
            }
        )
        .unwrap());
    }

    #[test]
    fn old_login_failures_are_forgotten_from_their_index() {
        let plan = plan(
            &conn(),
            "DELETE FROM login_failures WHERE last_failed_at < 100",
        );
        assert!(plan.contains("login_failures_by_age"), "{plan}");
    }

    #[test]
    fn login_failures_count_per_email_and_client() {
        let conn = conn();
        assert_eq!(
            count_login_failure(&conn, "a@b.c", "1.2.3.4", 10).unwrap(),
            1
        );
        assert_eq!(
            count_login_failure(&conn, "a@b.c", "1.2.3.4", 11).unwrap(),
            2
        );
        assert_eq!(
            count_login_failure(&conn, "a@b.c", "5.6.7.8", 12).unwrap(),
            1
        );
        lock_login(&conn, "a@b.c", "1.2.3.4", 100).unwrap();
        lock_login(&conn, "a@b.c", "1.2.3.4", 50).unwrap();
        assert_eq!(
            login_locked_until(&conn, "a@b.c", "1.2.3.4").unwrap(),
            Some(100)
        );
        assert_eq!(login_locked_until(&conn, "a@b.c", "5.6.7.8").unwrap(), None);
        clear_login_failures(&conn, "a@b.c", "1.2.3.4").unwrap();
        assert_eq!(
            count_login_failure(&conn, "a@b.c", "1.2.3.4", 13).unwrap(),
            1
        );
        assert_eq!(forget_login_failures_before(&conn, 13).unwrap(), 1);
    }

    #[test]
    fn revoking_a_session_twice_keeps_the_first_revocation_time() {
        let conn = conn();
        let user = UserRow::new("a@b.c".into(), "A".into(), "x".into(), false, 0);
        insert_user(&conn, &user).unwrap();
        let session = SessionId::generate();
        insert_session(&conn, session, user.id, 0, 1000).unwrap();
        assert_eq!(revoke_session(&conn, session, 10).unwrap(), Some(10));
        assert_eq!(revoke_session(&conn, session, 20).unwrap(), Some(10));
        let unknown = SessionId::generate();
        assert_eq!(revoke_session(&conn, unknown, 20).unwrap(), None);
    }

    #[test]
    fn disabling_a_user_changes_something_only_once() {
        let conn = conn();
        let user = UserRow::new("a@b.c".into(), "A".into(), "x".into(), false, 0);
        insert_user(&conn, &user).unwrap();
        assert!(!set_user_disabled(&conn, user.id, false).unwrap());
        assert!(set_user_disabled(&conn, user.id, true).unwrap());
        assert!(!set_user_disabled(&conn, user.id, true).unwrap());
    }

    #[test]
    fn deleting_a_project_removes_its_memberships() {
        let conn = conn();
        let user = UserRow::new("a@b.c".into(), "A".into(), "x".into(), false, 0);
        insert_user(&conn, &user).unwrap();
        let project = ProjectRow {
            id: ProjectId::generate(),
            slug: "web".into(),
            name: "Web".into(),
            created_at: 0,
        };
        assert!(insert_project(&conn, &project, user.id).unwrap());
        conn.execute("DELETE FROM projects WHERE id = ?1", [project.id])
            .unwrap();
        assert_eq!(membership(&conn, project.id, user.id).unwrap(), None);
    }
}
