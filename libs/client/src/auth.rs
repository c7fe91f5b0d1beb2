//! Sign-in, the caller, users and signing keys.

use reqwest::Method;
use serde::Serialize;
use verdict_contracts::auth::{
    CreateUser, Email, Jwks, LoginPassword, LoginRequest, Me, RefreshRequest, RotatedKey,
    TokenPair, User,
};
use verdict_contracts::ids::UserId;

use crate::client::{Payload, Repeat};
use crate::{Client, Error};

#[derive(Serialize)]
struct UserChange {
    disabled: bool,
}

impl Client {
    /// `POST /auth/login`. Never repeated: a failed login counts towards a lockout.
    pub async fn login(&self, email: Email, password: LoginPassword) -> Result<TokenPair, Error> {
        let mut call = self.call(Method::POST, self.api(&["auth", "login"]), Repeat::Never);
        call.payload = Payload::json(&LoginRequest { email, password })?;
        call.authenticated = false;
        self.json(call).await
    }

    /// `POST /auth/refresh`: a new pair; the old refresh token is spent, so this is
    /// never repeated.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, Error> {
        let mut call = self.call(Method::POST, self.api(&["auth", "refresh"]), Repeat::Never);
        call.payload = Payload::json(&RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        })?;
        call.authenticated = false;
        self.json(call).await
    }

    /// `POST /auth/logout`: ends the sign-in the refresh token belongs to.
    pub async fn logout(&self, refresh_token: &str) -> Result<(), Error> {
        let mut call = self.call(Method::POST, self.api(&["auth", "logout"]), Repeat::Never);
        call.payload = Payload::json(&RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        })?;
        call.authenticated = false;
        self.empty(call).await
    }

    /// `GET /me` (a signed-in user, not an API token).
    pub async fn me(&self) -> Result<Me, Error> {
        self.json(self.call(Method::GET, self.api(&["me"]), Repeat::Idempotent))
            .await
    }

    /// `POST /users` (administrators).
    pub async fn create_user(&self, user: &CreateUser) -> Result<User, Error> {
        let mut call = self.call(Method::POST, self.api(&["users"]), Repeat::keyed());
        call.payload = Payload::json(user)?;
        self.json(call).await
    }

    /// `PATCH /users/{id}` (administrators): a disabled user's tokens stop working.
    pub async fn set_user_disabled(&self, user_id: UserId, disabled: bool) -> Result<User, Error> {
        let path = self.api(&["users", &user_id.to_string()]);
        let mut call = self.call(Method::PATCH, path, Repeat::Never);
        call.payload = Payload::json(&UserChange { disabled })?;
        self.json(call).await
    }

    /// `POST /admin/keys/rotate` (administrators).
    pub async fn rotate_keys(&self) -> Result<RotatedKey, Error> {
        self.json(self.call(
            Method::POST,
            self.api(&["admin", "keys", "rotate"]),
            Repeat::Never,
        ))
        .await
    }

    /// `GET /.well-known/jwks.json`: the public keys access tokens are signed with.
    pub async fn jwks(&self) -> Result<Jwks, Error> {
        let mut call = self.call(
            Method::GET,
            self.url(&[".well-known", "jwks.json"]),
            Repeat::Idempotent,
        );
        call.authenticated = false;
        self.json(call).await
    }
}
