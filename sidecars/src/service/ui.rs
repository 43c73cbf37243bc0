//! The admin page at `/ui` (LiteLLM's admin UI, in small): keys and spend through the
//! management API, signed in with the master key. Static files built into the binary, served
//! uncached under a Content-Security-Policy that allows nothing but this origin (no inline
//! script or style, no other host); the page calls the API like any client.

use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::error::ApiError;
use super::AppState;

/// Only this origin, for scripts, styles, images and API calls; nothing inline, no frames.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The page's files: name, content type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("ui/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("ui/style.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("ui/favicon.svg"),
    ),
];

/// `GET /ui`, `/ui/` (the page) and `/ui/{asset}`; anything else under `/ui/` is 404.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(page))
        .route("/ui/", get(page))
        .route("/ui/{*asset}", get(asset))
}

async fn page() -> Response {
    serve("index.html")
}

async fn asset(Path(name): Path<String>) -> Response {
    serve(&name)
}

fn serve(name: &str) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => (
            [
                (CONTENT_TYPE, *content_type),
                (CACHE_CONTROL, "no-store"),
                (CONTENT_SECURITY_POLICY, CSP),
                (X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (X_FRAME_OPTIONS, "DENY"),
                (REFERRER_POLICY, "no-referrer"),
            ],
            *body,
        )
            .into_response(),
        None => ApiError::not_found(
            "path",
            format!("/ui/{name}: no such file; the admin page is at /ui"),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The routes on a free port, answering over real HTTP.
    async fn served() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = routes().with_state(AppState::new(Default::default()).unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    async fn get(base: &str, path: &str) -> reqwest::Response {
        reqwest::get(format!("{base}{path}")).await.unwrap()
    }

    fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header"))
    }

    #[tokio::test]
    async fn the_page_and_its_files_with_their_types() {
        let base = served().await;
        for (path, content_type) in [
            ("/ui", "text/html; charset=utf-8"),
            ("/ui/", "text/html; charset=utf-8"),
            ("/ui/index.html", "text/html; charset=utf-8"),
            ("/ui/app.js", "text/javascript; charset=utf-8"),
            ("/ui/style.css", "text/css; charset=utf-8"),
            ("/ui/favicon.svg", "image/svg+xml"),
        ] {
            let r = get(&base, path).await;
            assert_eq!(r.status(), 200, "{path}");
            assert_eq!(header(&r, "content-type"), content_type, "{path}");
            assert_eq!(header(&r, "cache-control"), "no-store", "{path}");
            assert_eq!(header(&r, "content-security-policy"), CSP, "{path}");
            assert_eq!(header(&r, "x-content-type-options"), "nosniff", "{path}");
            assert!(!r.text().await.unwrap().is_empty(), "{path}");
        }
        let page = get(&base, "/ui").await.text().await.unwrap();
        assert!(page.contains(r#"<script src="/ui/app.js""#));
        assert!(page.contains(r#"href="/ui/style.css""#));
    }

    #[tokio::test]
    async fn unknown_files_are_404() {
        let base = served().await;
        for path in ["/ui/nope.js", "/ui/..%2Fmod.rs", "/ui/app.js/x"] {
            let r = get(&base, path).await;
            assert_eq!(r.status(), 404, "{path}");
            assert_eq!(header(&r, "content-type"), "application/json", "{path}");
        }
    }

    #[test]
    fn the_policy_allows_only_this_origin() {
        for directive in CSP.split(';').map(str::trim) {
            let sources: Vec<&str> = directive.split_whitespace().skip(1).collect();
            assert!(
                sources.iter().all(|s| ["'self'", "'none'"].contains(s)),
                "{directive}"
            );
        }
        // Nothing inline: every script and style is a file this module serves.
        for (name, _, body) in ASSETS {
            if name.ends_with(".html") {
                assert!(
                    !body.contains("<script>") && !body.contains("style="),
                    "{name}"
                );
                assert!(
                    !body.contains("http://") && !body.contains("https://"),
                    "{name}"
                );
            }
        }
    }
}
