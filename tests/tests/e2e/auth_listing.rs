//! Listing users (administrators) and a project's members, and adding a member by
//! e-mail address: the operations the dashboard's settings and admin pages use.

use reqwest::Method;
use serde_json::{json, Value};
use verdict_testkit::TestApp;

#[tokio::test]
async fn administrators_list_every_user_and_no_one_else_does() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, alice) = app.user(&admin, "alice@example.com").await;
    app.user(&admin, "bob@example.com").await;
    let first: Value = app
        .get_as(&admin, "/api/v1/users?limit=2")
        .await
        .json()
        .await
        .unwrap();
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second: Value = app
        .get_as(&admin, &format!("/api/v1/users?limit=2&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    let emails: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["items"].as_array().unwrap())
        .map(|user| user["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails.len(), 3, "{emails:?}");
    for email in [
        "alice@example.com",
        "bob@example.com",
        verdict_testkit::ADMIN_EMAIL,
    ] {
        assert!(emails.contains(&email), "{emails:?}");
    }
    assert!(!first.to_string().contains("password"));
    assert_eq!(app.get_as(&alice, "/api/v1/users").await.status(), 403);
}

#[tokio::test]
async fn maintainers_add_members_by_e_mail_and_list_them() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, owner) = app.user(&admin, "owner@example.com").await;
    app.project(&owner, "web").await;
    let (viewer_id, viewer) = app.user(&admin, "viewer@example.com").await;
    let added = app
        .post(
            &owner,
            "/api/v1/projects/web/members",
            json!({ "email": "Viewer@Example.com", "role": "viewer" }),
        )
        .await;
    assert_eq!(added.status(), 200);
    let member: Value = added.json().await.unwrap();
    assert_eq!(member["user_id"], viewer_id.as_str());
    let members: Value = app
        .get_as(&owner, "/api/v1/projects/web/members")
        .await
        .json()
        .await
        .unwrap();
    let listed: Vec<(&str, &str)> = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["email"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.contains(&("owner@example.com", "owner")));
    assert!(listed.contains(&("viewer@example.com", "viewer")));
    let unknown = app
        .post(
            &owner,
            "/api/v1/projects/web/members",
            json!({ "email": "nobody@example.com", "role": "viewer" }),
        )
        .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        app.get_as(&viewer, "/api/v1/projects/web/members")
            .await
            .status(),
        403
    );
    let as_viewer = app
        .send(
            Method::POST,
            &viewer,
            "/api/v1/projects/web/members",
            Some(json!({ "email": "owner@example.com", "role": "viewer" })),
        )
        .await;
    assert_eq!(as_viewer.status(), 403);
}
