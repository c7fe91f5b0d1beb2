//! Projects and memberships.

use verdict_contracts::auth::{
    AddMember, CreateProject, DeleteMember, ListMembers, ListProjects, Member, MemberInfo, Project,
    ProjectAccess, ProjectRef, PutMember, Role,
};

use verdict_contracts::ids::{ProjectId, UserId};
use verdict_contracts::page::{encode_cursor, Page};
use verdict_contracts::Timestamp;

use crate::access::{self, Caller};
use crate::context::Auth;
use crate::store::{self, ProjectRow};
use crate::{keyed, Error};
use verdict_store::idempotency::KeyedRequest;

fn project_out(project: ProjectRow) -> Project {
    Project {
        id: project.id,
        slug: project.slug,
        name: project.name,
        created_at: Timestamp::from_secs(project.created_at).to_rfc3339(),
    }
}

pub async fn create(
    auth: &Auth,
    caller: Caller,
    request: CreateProject,
    keyed: Option<KeyedRequest>,
) -> Result<Project, Error> {
    let Some(owner) = caller.user_id() else {
        return Err(Error::Forbidden("API tokens cannot create projects"));
    };
    let project = ProjectRow {
        id: ProjectId::generate(),
        slug: request.slug.as_str().to_owned(),
        name: request.name.as_str().to_owned(),
        created_at: Timestamp::now().secs(),
    };
    auth.store
        .write(move |conn| {
            let tx = conn.transaction()?;
            if let Some(answer) = keyed::repeated(&tx, keyed.as_ref())? {
                return Ok(answer);
            }
            if !store::insert_project(&tx, &project, owner)? {
                return Err(Error::Conflict("a project with this slug exists".into()));
            }
            let answer = project_out(project);
            keyed::remember(&tx, keyed.as_ref(), &answer)?;
            tx.commit()?;
            Ok(answer)
        })
        .await
}

pub async fn list(
    auth: &Auth,
    caller: Caller,
    request: ListProjects,
) -> Result<Page<Project>, Error> {
    let after = request
        .page
        .single_key_after()
        .map_err(|err| Error::BadRequest(err.to_string()))?;
    let limit = request.page.effective_limit();
    let projects = auth
        .store
        .read(move |conn| {
            let rows = match &caller {
                Caller::User { is_admin: true, .. } => {
                    store::all_projects(conn, &after, limit + 1)?
                }
                Caller::User { user_id, .. } => {
                    store::projects_of_user(conn, *user_id, &after, limit + 1)?
                        .into_iter()
                        .map(|(project, _)| project)
                        .collect()
                }
                Caller::ApiToken { project_id, .. } => {
                    store::project_by_ref(conn, &project_id.to_string())?
                        .filter(|project| project.id.to_string() > after)
                        .into_iter()
                        .collect()
                }
            };
            Ok::<_, Error>(rows)
        })
        .await?;
    Ok(Page::from_overfetched(
        projects,
        limit,
        |p| encode_cursor(&[&p.id.to_string()]),
        project_out,
    ))
}

pub async fn get(auth: &Auth, caller: Caller, request: ProjectRef) -> Result<Project, Error> {
    let (project, role) = auth.project_for(&caller, request.project).await?;
    access::require(role, Role::Viewer)?;
    Ok(project_out(project))
}

pub async fn authorize(
    auth: &Auth,
    caller: Caller,
    request: ProjectRef,
) -> Result<ProjectAccess, Error> {
    let (project, role) = auth.project_for(&caller, request.project).await?;
    let role = access::require(role, Role::Viewer)?;
    Ok(ProjectAccess {
        project_id: project.id,
        slug: project.slug,
        role,
    })
}

/// Who a membership is for: a user id (the API's path) or an e-mail address (the
/// dashboard's form).
enum MemberRef {
    Id(UserId),
    Email(String),
}

pub async fn put_member(auth: &Auth, caller: Caller, request: PutMember) -> Result<Member, Error> {
    let member = MemberRef::Id(request.user_id);
    set_member(auth, caller, request.project, member, request.role).await
}

pub async fn add_member(auth: &Auth, caller: Caller, request: AddMember) -> Result<Member, Error> {
    let member = MemberRef::Email(request.member.email.as_str().to_owned());
    set_member(auth, caller, request.project, member, request.member.role).await
}

async fn set_member(
    auth: &Auth,
    caller: Caller,
    project: String,
    member: MemberRef,
    wanted: Role,
) -> Result<Member, Error> {
    let (project, role) = auth.project_for(&caller, project).await?;
    let own = access::require(role, Role::Maintainer)?;
    let project_id = project.id;
    auth.store
        .write(move |conn| {
            let tx = conn.transaction()?;
            let user = match &member {
                MemberRef::Id(id) => store::user_by_id(&tx, *id)?,
                MemberRef::Email(email) => store::user_by_email(&tx, email)?,
            };
            let Some(user_id) = user.map(|user| user.id) else {
                return Err(Error::NotFound("user"));
            };
            let current = store::membership(&tx, project_id, user_id)?;
            access::may_assign(own, current, wanted)?;
            if current == Some(Role::Owner)
                && wanted != Role::Owner
                && store::count_owners(&tx, project_id)? == 1
            {
                return Err(Error::Conflict("a project keeps at least one owner".into()));
            }
            store::put_membership(&tx, project_id, user_id, wanted)?;
            tx.commit()?;
            Ok(Member {
                project_id,
                user_id,
                role: wanted,
            })
        })
        .await
}

pub async fn delete_member(
    auth: &Auth,
    caller: Caller,
    request: DeleteMember,
) -> Result<(), Error> {
    let (project, role) = auth.project_for(&caller, request.project).await?;
    let own = access::require(role, Role::Maintainer)?;
    let (project_id, user_id) = (project.id, request.user_id);
    auth.store
        .write(move |conn| {
            let tx = conn.transaction()?;
            let Some(current) = store::membership(&tx, project_id, user_id)? else {
                return Err(Error::NotFound("member"));
            };
            access::may_assign(own, Some(current), Role::Viewer)?;
            if current == Role::Owner && store::count_owners(&tx, project_id)? == 1 {
                return Err(Error::Conflict("a project keeps at least one owner".into()));
            }
            store::delete_membership(&tx, project_id, user_id)?;
            tx.commit()?;
            Ok(())
        })
        .await
}

/// The project's members with who they are (maintainers and owners).
pub async fn list_members(
    auth: &Auth,
    caller: Caller,
    request: ListMembers,
) -> Result<Page<MemberInfo>, Error> {
    let (project, role) = auth.project_for(&caller, request.project).await?;
    access::require(role, Role::Maintainer)?;
    let after = request
        .page
        .single_key_after()
        .map_err(|err| Error::BadRequest(err.to_string()))?;
    let limit = request.page.effective_limit();
    let members = auth
        .store
        .read(move |conn| {
            Ok::<_, Error>(store::members_of_project(
                conn,
                project.id,
                &after,
                limit + 1,
            )?)
        })
        .await?;
    Ok(Page::from_overfetched(
        members,
        limit,
        |(user, _)| encode_cursor(&[&user.id.to_string()]),
        |(user, role)| MemberInfo {
            user_id: user.id,
            email: user.email,
            name: user.name,
            role,
        },
    ))
}
