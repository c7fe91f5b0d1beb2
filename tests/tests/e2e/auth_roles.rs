//! The role matrix: every endpoint of the auth and access API, called by each role of a
//! project and by a member of another project, answers with the documented status, and
//! nothing crosses projects.

use reqwest::Method;
use serde_json::{json, Value};
use verdict_testkit::TestApp;

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Viewer,
    Reporter,
    Maintainer,
    Owner,
    /// An owner of another project, with no role in this one.
    Outsider,
    /// An API token of this project with the reporter role.
    ReporterToken,
}

const EVERYONE: [Who; 6] = [
    Who::Viewer,
    Who::Reporter,
    Who::Maintainer,
    Who::Owner,
    Who::Outsider,
    Who::ReporterToken,
];

struct World {
    app: TestApp,
    project: String,
    other_project: String,
    tokens: Vec<(Who, String)>,
    /// A plain member the managing calls act on.
    target_user: String,
}

impl World {
    async fn new() -> Self {
        let app = TestApp::spawn().await;
        let admin = app.admin_token().await;
        let (_, owner) = app.user(&admin, "owner@example.com").await;
        let project = app.project(&owner, "web").await;
        let (_, outsider) = app.user(&admin, "outsider@example.com").await;
        let other_project = app.project(&outsider, "other").await;
        let mut tokens = vec![(Who::Owner, owner.clone()), (Who::Outsider, outsider)];
        for (who, role) in [
            (Who::Viewer, "viewer"),
            (Who::Reporter, "reporter"),
            (Who::Maintainer, "maintainer"),
        ] {
            let (id, token) = app.user(&admin, &format!("{role}@example.com")).await;
            let put = app
                .send(
                    Method::PUT,
                    &owner,
                    &format!("/api/v1/projects/{project}/members/{id}"),
                    Some(json!({ "role": role })),
                )
                .await;
            assert_eq!(put.status(), 200);
            tokens.push((who, token));
        }
        let (_, api_token_secret) = app.api_token(&owner, &project, "reporter").await;
        tokens.push((Who::ReporterToken, api_token_secret.clone()));
        let (target_user, _) = app.user(&admin, "target@example.com").await;
        Self {
            app,
            project,
            other_project,
            tokens,
            target_user,
        }
    }

    fn token(&self, who: Who) -> &str {
        &self.tokens.iter().find(|(w, _)| *w == who).unwrap().1
    }

    async fn call(&self, who: Who, method: Method, path: &str, body: Option<Value>) -> u16 {
        self.app
            .send(method, self.token(who), path, body)
            .await
            .status()
            .as_u16()
    }

    /// A token of this project made by the owner, for the revoke calls to act on.
    async fn fresh_token_id(&self) -> String {
        let created: Value = self
            .app
            .post(
                self.token(Who::Owner),
                &format!("/api/v1/projects/{}/tokens", self.project),
                json!({ "name": "victim", "role": "viewer" }),
            )
            .await
            .json()
            .await
            .unwrap();
        created["id"].as_str().unwrap().to_owned()
    }
}

fn expect(
    who: Who,
    viewer: u16,
    reporter: u16,
    maintainer: u16,
    owner: u16,
    outsider: u16,
    token: u16,
) -> u16 {
    match who {
        Who::Viewer => viewer,
        Who::Reporter => reporter,
        Who::Maintainer => maintainer,
        Who::Owner => owner,
        Who::Outsider => outsider,
        Who::ReporterToken => token,
    }
}

#[tokio::test]
async fn reading_a_project_needs_any_role_in_it() {
    let world = World::new().await;
    for who in EVERYONE {
        for reference in [world.project.clone(), "web".to_owned()] {
            let status = world
                .call(
                    who,
                    Method::GET,
                    &format!("/api/v1/projects/{reference}"),
                    None,
                )
                .await;
            assert_eq!(
                status,
                expect(who, 200, 200, 200, 200, 404, 200),
                "{who:?} GET project {reference}"
            );
        }
    }
}

#[tokio::test]
async fn managing_members_needs_maintainer_and_outsiders_see_nothing() {
    let world = World::new().await;
    let member = format!(
        "/api/v1/projects/{}/members/{}",
        world.project, world.target_user
    );
    for who in EVERYONE {
        let put = world
            .call(who, Method::PUT, &member, Some(json!({ "role": "viewer" })))
            .await;
        assert_eq!(
            put,
            expect(who, 403, 403, 200, 200, 404, 403),
            "{who:?} PUT member"
        );
        let delete = world.call(who, Method::DELETE, &member, None).await;
        let expected_delete = expect(who, 403, 403, 204, 204, 404, 403);
        // Only a successful PUT left a member to delete.
        let expected_delete = if put == 200 {
            expected_delete
        } else {
            expect(who, 403, 403, 404, 404, 404, 403)
        };
        assert_eq!(delete, expected_delete, "{who:?} DELETE member");
    }
}

#[tokio::test]
async fn managing_tokens_needs_maintainer_and_outsiders_see_nothing() {
    let world = World::new().await;
    let tokens = format!("/api/v1/projects/{}/tokens", world.project);
    for who in EVERYONE {
        let create = world
            .call(
                who,
                Method::POST,
                &tokens,
                Some(json!({ "name": "x", "role": "viewer" })),
            )
            .await;
        assert_eq!(
            create,
            expect(who, 403, 403, 201, 201, 404, 403),
            "{who:?} POST token"
        );
        let list = world.call(who, Method::GET, &tokens, None).await;
        assert_eq!(
            list,
            expect(who, 403, 403, 200, 200, 404, 403),
            "{who:?} GET tokens"
        );
        let victim = world.fresh_token_id().await;
        let revoke = world
            .call(who, Method::DELETE, &format!("{tokens}/{victim}"), None)
            .await;
        assert_eq!(
            revoke,
            expect(who, 403, 403, 204, 204, 404, 403),
            "{who:?} DELETE token"
        );
    }
}

#[tokio::test]
async fn nobody_grants_a_role_above_their_own() {
    let world = World::new().await;
    let member = format!(
        "/api/v1/projects/{}/members/{}",
        world.project, world.target_user
    );
    let status = world
        .call(
            Who::Maintainer,
            Method::PUT,
            &member,
            Some(json!({ "role": "owner" })),
        )
        .await;
    assert_eq!(status, 403);
    let tokens = format!("/api/v1/projects/{}/tokens", world.project);
    let status = world
        .call(
            Who::Maintainer,
            Method::POST,
            &tokens,
            Some(json!({ "name": "x", "role": "owner" })),
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_last_owner_cannot_be_removed() {
    let world = World::new().await;
    let me: Value = world
        .app
        .get_as(world.token(Who::Owner), "/api/v1/me")
        .await
        .json()
        .await
        .unwrap();
    let owner_id = me["id"].as_str().unwrap();
    let path = format!("/api/v1/projects/{}/members/{owner_id}", world.project);
    assert_eq!(
        world.call(Who::Owner, Method::DELETE, &path, None).await,
        409
    );
}

#[tokio::test]
async fn user_administration_is_for_administrators_only() {
    let world = World::new().await;
    let body =
        json!({ "email": "new@example.com", "name": "New", "password": "long-enough-password" });
    for who in EVERYONE {
        assert_eq!(
            world
                .call(who, Method::POST, "/api/v1/users", Some(body.clone()))
                .await,
            403,
            "{who:?} POST user"
        );
        let path = format!("/api/v1/users/{}", world.target_user);
        let status = world
            .call(who, Method::PATCH, &path, Some(json!({ "disabled": true })))
            .await;
        assert_eq!(status, 403, "{who:?} PATCH user");
    }
}

#[tokio::test]
async fn users_create_projects_and_api_tokens_cannot() {
    let world = World::new().await;
    for who in EVERYONE {
        let slug = format!("p-{}", format!("{who:?}").to_lowercase());
        let status = world
            .call(
                who,
                Method::POST,
                "/api/v1/projects",
                Some(json!({ "slug": slug, "name": "P" })),
            )
            .await;
        assert_eq!(
            status,
            expect(who, 201, 201, 201, 201, 201, 403),
            "{who:?} POST project"
        );
    }
}

#[tokio::test]
async fn project_lists_and_profiles_show_only_the_callers_projects() {
    let world = World::new().await;
    for who in EVERYONE {
        let list = world.app.get_as(world.token(who), "/api/v1/projects").await;
        assert_eq!(list.status(), 200);
        let text = list.text().await.unwrap();
        let sees_project = text.contains(&world.project);
        assert_eq!(
            sees_project,
            who != Who::Outsider,
            "{who:?} lists the project"
        );
        assert_eq!(
            text.contains(&world.other_project),
            who == Who::Outsider,
            "{who:?} lists the other project"
        );

        let me = world.call(who, Method::GET, "/api/v1/me", None).await;
        assert_eq!(
            me,
            expect(who, 200, 200, 200, 200, 200, 403),
            "{who:?} GET me"
        );
    }
}

#[tokio::test]
async fn an_api_token_of_one_project_reaches_nothing_in_another() {
    let world = World::new().await;
    let token = Who::ReporterToken;
    let other = &world.other_project;
    assert_eq!(
        world
            .call(
                token,
                Method::GET,
                &format!("/api/v1/projects/{other}"),
                None
            )
            .await,
        404
    );
    assert_eq!(
        world
            .call(
                token,
                Method::GET,
                &format!("/api/v1/projects/{other}/tokens"),
                None
            )
            .await,
        404
    );
    let body = json!({ "name": "x", "role": "viewer" });
    assert_eq!(
        world
            .call(
                token,
                Method::POST,
                &format!("/api/v1/projects/{other}/tokens"),
                Some(body)
            )
            .await,
        404
    );
}
