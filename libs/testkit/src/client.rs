//! Calls a test makes over and over: signing in, creating users and projects.

use serde_json::{json, Value};

use crate::app::{TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

impl TestApp {
    /// Signs in; returns the whole token response.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let response = self
            .http
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("login request");
        assert_eq!(response.status(), 200, "login as {email} failed");
        response.json().await.expect("token pair")
    }

    /// An access token of the first administrator.
    pub async fn admin_token(&self) -> String {
        access_token(&self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await)
    }

    /// Creates a user (as the administrator) and returns `(user_id, access_token)`.
    pub async fn user(&self, admin: &str, email: &str) -> (String, String) {
        let password = "a-password-for-tests";
        let created = self
            .post(
                admin,
                "/api/v1/users",
                json!({ "email": email, "name": email, "password": password }),
            )
            .await;
        assert_eq!(created.status(), 201, "creating {email}");
        let user: Value = created.json().await.expect("user");
        let token = access_token(&self.login(email, password).await);
        (user["id"].as_str().expect("user id").to_owned(), token)
    }

    /// Creates a project as `token`'s user and returns its id.
    pub async fn project(&self, token: &str, slug: &str) -> String {
        let response = self
            .post(
                token,
                "/api/v1/projects",
                json!({ "slug": slug, "name": slug }),
            )
            .await;
        assert_eq!(response.status(), 201, "creating project {slug}");
        let project: Value = response.json().await.expect("project");
        project["id"].as_str().expect("project id").to_owned()
    }

    /// Creates an API token in `project` (id or slug) as `token`'s caller; returns its
    /// id and its secret.
    pub async fn api_token(&self, token: &str, project: &str, role: &str) -> (String, String) {
        let response = self
            .post(
                token,
                &format!("/api/v1/projects/{project}/tokens"),
                json!({ "name": "ci", "role": role }),
            )
            .await;
        assert_eq!(
            response.status(),
            201,
            "creating a {role} token in {project}"
        );
        let created: Value = response.json().await.expect("token");
        (
            created["id"].as_str().expect("token id").to_owned(),
            created["token"].as_str().expect("token secret").to_owned(),
        )
    }

    pub async fn get_as(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap_or_else(|err| panic!("GET {path}: {err}"))
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> reqwest::Response {
        self.send(reqwest::Method::POST, token, path, Some(body))
            .await
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .request(method.clone(), self.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request
            .send()
            .await
            .unwrap_or_else(|err| panic!("{method} {path}: {err}"))
    }
}

pub fn access_token(pair: &Value) -> String {
    pair["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}
