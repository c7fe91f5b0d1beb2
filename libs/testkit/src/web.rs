//! A browser session of the dashboard over plain HTTP: signs in through the form, keeps
//! the session cookie, and posts forms the way a page of the site would.

use reqwest::header;

use crate::app::TestApp;

/// A signed-in dashboard session; redirects are not followed, so tests see them.
pub struct WebSession {
    base: String,
    http: reqwest::Client,
    /// `verdict_session=…`, as the browser would send it.
    pub cookie: String,
}

/// `name=value` of a `Set-Cookie` header whose cookie is `name`.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .and_then(|value| value.split(';').next())
        .map(str::to_owned)
}

/// `application/x-www-form-urlencoded` of the fields.
pub fn form_body(fields: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The value of the first hidden `csrf` field of a page.
pub fn csrf_of(html: &str) -> Option<String> {
    let start = html.find(r#"name="csrf" value=""#)? + r#"name="csrf" value=""#.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

impl TestApp {
    /// Signs in through `/login` as a browser would.
    pub async fn web_login(&self, email: &str, password: &str) -> WebSession {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        let base = self.url("");
        let form = http
            .get(format!("{base}/login"))
            .send()
            .await
            .expect("GET /login");
        let login_cookie =
            set_cookie(&form, "verdict_login").expect("the login form sets its cookie");
        let csrf =
            csrf_of(&form.text().await.expect("login page")).expect("the login form's token");
        let response = http
            .post(format!("{base}/login"))
            .header(header::COOKIE, login_cookie)
            .header(header::ORIGIN, &base)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form_body(&[
                ("email", email),
                ("password", password),
                ("csrf", &csrf),
                ("next", "/"),
            ]))
            .send()
            .await
            .expect("POST /login");
        assert_eq!(response.status(), 303, "signing in as {email}");
        let cookie = set_cookie(&response, "verdict_session").expect("the session cookie");
        WebSession { base, http, cookie }
    }

    /// [`TestApp::web_login`] as the first administrator.
    pub async fn web_admin(&self) -> WebSession {
        self.web_login(crate::ADMIN_EMAIL, crate::ADMIN_PASSWORD)
            .await
    }
}

impl WebSession {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header(header::COOKIE, &self.cookie)
            .send()
            .await
            .unwrap_or_else(|err| panic!("GET {path}: {err}"))
    }

    /// The session's CSRF token, as its pages carry it.
    pub async fn csrf(&self) -> String {
        let page = self.get("/").await.text().await.expect("home page");
        csrf_of(&page).expect("a page with the session's token")
    }

    /// Posts a form from `origin` (a page of the site: `Some(base URL)`).
    pub async fn post_form(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        origin: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(header::COOKIE, &self.cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form_body(fields));
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        request
            .send()
            .await
            .unwrap_or_else(|err| panic!("POST {path}: {err}"))
    }

    /// The base URL, which is the site's origin.
    pub fn origin(&self) -> &str {
        &self.base
    }
}
