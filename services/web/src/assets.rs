//! Style sheet and scripts, embedded in the binary and served under names that carry a
//! hash of their content, so browsers may keep them forever.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
pub struct Asset {
    /// `app.css`: the stem and extension its fingerprinted name keeps.
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

pub const STYLE: &Asset = &Asset {
    name: "app.css",
    content_type: "text/css; charset=utf-8",
    body: include_bytes!("../assets/app.css"),
};

pub const LIVE: &Asset = &Asset {
    name: "live.js",
    content_type: "text/javascript; charset=utf-8",
    body: include_bytes!("../assets/live.js"),
};

/// Every asset, for serving and for the size budget.
pub const ALL: [&Asset; 2] = [STYLE, LIVE];

/// `app.3f2a9c0d1b7e.css` for each asset.
static NAMES: LazyLock<Vec<String>> =
    LazyLock::new(|| ALL.iter().map(|a| fingerprint(a)).collect());

fn fingerprint(asset: &Asset) -> String {
    let digest = Sha256::digest(asset.body);
    let hash: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    let (stem, extension) = asset.name.rsplit_once('.').unwrap_or((asset.name, ""));
    format!("{stem}.{hash}.{extension}")
}

/// The URL a page links an asset with.
pub fn url(asset: &Asset) -> String {
    let index = ALL
        .iter()
        .position(|candidate| candidate.name == asset.name)
        .unwrap_or_default();
    format!("/assets/{}", NAMES[index])
}

/// Bytes of script and style a browser downloads, uncompressed.
pub fn shipped_bytes() -> usize {
    ALL.iter().map(|asset| asset.body.len()).sum()
}

pub async fn serve(Path(name): Path<String>) -> Response {
    let Some(index) = NAMES.iter().position(|known| *known == name) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CACHE_CONTROL, "no-store")],
            "no such asset",
        )
            .into_response();
    };
    let asset = ALL[index];
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // The name changes whenever the content does.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_names_carry_a_hash_of_their_content() {
        let style = url(STYLE);
        assert!(
            style.starts_with("/assets/app.") && style.ends_with(".css"),
            "{style}"
        );
        assert_eq!(style.len(), "/assets/app..css".len() + 12);
        assert_ne!(url(STYLE), url(LIVE));
    }

    #[test]
    fn scripts_and_styles_stay_within_their_budget() {
        assert!(shipped_bytes() < 100 * 1024, "{} bytes", shipped_bytes());
    }
}
