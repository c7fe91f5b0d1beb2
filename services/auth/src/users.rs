//! Users: the profile of the caller, administration, and the first administrator.

use verdict_contracts::auth::{
    CreateUser, ListUsers, Me, ProjectRole, RevocationTarget, UpdateUser, User,
};
use verdict_contracts::page::{encode_cursor, Page};
use verdict_contracts::Timestamp;

use crate::access::Caller;
use crate::config::AdminBootstrap;
use crate::context::{Auth, RevocationWrite};
use crate::store::{self, UserRow};
use crate::{keyed, secrets, Error};
use verdict_store::idempotency::KeyedRequest;

fn user_out(user: UserRow) -> User {
    User {
        id: user.id,
        email: user.email,
        name: user.name,
        is_admin: user.is_admin,
        disabled: user.disabled,
        created_at: Timestamp::from_secs(user.created_at).to_rfc3339(),
    }
}

fn require_admin(caller: &Caller) -> Result<(), Error> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(Error::Forbidden("only administrators can manage users"))
    }
}

/// How many projects `/me` lists; the full list is `/projects`, paginated.
const ME_PROJECTS: u32 = 500;

pub async fn me(auth: &Auth, caller: Caller) -> Result<Me, Error> {
    let Some(user_id) = caller.user_id() else {
        return Err(Error::Forbidden("API tokens have no user profile"));
    };
    auth.store
        .read(move |conn| {
            let user = store::user_by_id(conn, user_id)?
                .ok_or(Error::Unauthorized("the account is gone"))?;
            let projects = store::projects_of_user(conn, user_id, "", ME_PROJECTS)?
                .into_iter()
                .map(|(project, role)| ProjectRole {
                    id: project.id,
                    slug: project.slug,
                    role,
                })
                .collect();
            Ok(Me {
                id: user.id,
                email: user.email,
                name: user.name,
                is_admin: user.is_admin,
                projects,
            })
        })
        .await
}

pub async fn create_user(
    auth: &Auth,
    caller: Caller,
    request: CreateUser,
    keyed: Option<KeyedRequest>,
) -> Result<User, Error> {
    require_admin(&caller)?;
    let password_hash = auth
        .hasher
        .hash(request.password.expose().to_owned())
        .await?;
    let user = UserRow::new(
        request.email.as_str().to_owned(),
        request.name.as_str().to_owned(),
        password_hash,
        false,
        Timestamp::now().secs(),
    );
    auth.store
        .write(move |conn| {
            let tx = conn.transaction()?;
            if let Some(answer) = keyed::repeated(&tx, keyed.as_ref())? {
                return Ok(answer);
            }
            if !store::insert_user(&tx, &user)? {
                return Err(Error::Conflict("a user with this e-mail exists".into()));
            }
            let answer = user_out(user);
            keyed::remember(&tx, keyed.as_ref(), &answer)?;
            tx.commit()?;
            Ok(answer)
        })
        .await
}

/// Every user, for administrators.
pub async fn list_users(
    auth: &Auth,
    caller: Caller,
    request: ListUsers,
) -> Result<Page<User>, Error> {
    require_admin(&caller)?;
    let after = request
        .page
        .single_key_after()
        .map_err(|err| Error::BadRequest(err.to_string()))?;
    let limit = request.page.effective_limit();
    let users = auth
        .store
        .read(move |conn| Ok::<_, Error>(store::all_users(conn, &after, limit + 1)?))
        .await?;
    Ok(Page::from_overfetched(
        users,
        limit,
        |user| encode_cursor(&[&user.id.to_string()]),
        user_out,
    ))
}

/// Disables or re-enables a user. Disabling revokes every token the user holds, on
/// every gateway at once.
pub async fn update_user(auth: &Auth, caller: Caller, request: UpdateUser) -> Result<User, Error> {
    require_admin(&caller)?;
    if caller.user_id() == Some(request.user_id) && request.disabled {
        return Err(Error::Conflict("you cannot disable yourself".into()));
    }
    let now = Timestamp::now().secs();
    let id = request.user_id;
    let (user, changed) = auth
        .store
        .write(move |conn| {
            let changed = store::set_user_disabled(conn, id, request.disabled)?;
            let user = store::user_by_id(conn, id)?.ok_or(Error::NotFound("user"))?;
            Ok::<_, Error>((user, changed))
        })
        .await?;
    // A change is told to the gateways; a repeated disable only fills in a revocation
    // the bucket lacks (its first publication failed), and a repeated enable does nothing.
    let target = RevocationTarget::User(user.id);
    match (user.disabled, changed) {
        (true, true) => {
            auth.publish_revocation(target, now, RevocationWrite::Replace)
                .await?
        }
        (true, false) => {
            auth.publish_revocation(target, now, RevocationWrite::IfAbsent)
                .await?
        }
        (false, true) => auth
            .revocations
            .delete(target.key())
            .await
            .map_err(|err| Error::Revocation(err.into()))?,
        (false, false) => {}
    }
    Ok(user_out(user))
}

/// Creates the first administrator on an empty database. Returns the generated password
/// when none was configured, for the operator to read once.
pub async fn bootstrap_admin(auth: &Auth, admin: &AdminBootstrap) -> Result<Option<String>, Error> {
    let empty = auth
        .store
        .read(|conn| Ok::<_, Error>(store::count_users(conn)? == 0))
        .await?;
    if !empty {
        return Ok(None);
    }
    let generated = admin.password.is_none().then(secrets::generated_password);
    let password = admin
        .password
        .clone()
        .or_else(|| generated.clone())
        .unwrap_or_default();
    let password_hash = auth.hasher.hash(password).await?;
    let user = UserRow::new(
        admin.email.trim().to_lowercase(),
        "Administrator".into(),
        password_hash,
        true,
        Timestamp::now().secs(),
    );
    let email = user.email.clone();
    auth.store
        .write(move |conn| Ok::<_, Error>(store::insert_user(conn, &user)?))
        .await?;
    tracing::info!(%email, "created the first administrator");
    Ok(generated)
}
