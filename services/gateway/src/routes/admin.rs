//! Operations for administrators.

use axum::extract::State;
use axum::Json;
use verdict_contracts::auth::{self, RotatedKey};
use verdict_contracts::system::Empty;

use crate::extract::Authenticated;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// Sign with a new key from now on. Tokens signed with the old one stay valid until
/// they expire.
#[utoipa::path(operation_id = "rotate_keys", post, path = "/api/v1/admin/keys/rotate", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "OK", body = RotatedKey), (status = 403, description = "The caller's role does not allow this", body = Problem)))]
pub async fn rotate_keys(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<RotatedKey>, ApiError> {
    state
        .answer(&auth::ROTATE_KEYS, &Empty {}, &principal)
        .await
}
