//! The real therapist dashboard as a client (`../shared/DASHBOARD.md`): how it signs in and
//! stays signed in, the query vocabulary it sends and the fields it reads.

use base64::Engine;
use serde_json::{json, Value};

use crate::helpers::*;

/// The payload of a JWT, as the dashboard's token manager decodes it (three parts or refused).
fn jwt_payload(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT: {token}");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON payload")
}

#[tokio::test]
async fn the_dashboard_signs_in_and_stays_signed_in_for_two_hours_of_refreshes() {
    let app = spawn_app().await;
    let (email, password, _) = register_therapist(&app).await;
    let login = json!({ "email": email, "password": password, "rememberMe": true, "userType": "terapeuta" });
    let mut session = json_body(app.post_json("/api/auth/login", &login).await).await;
    assert_eq!(session["success"], true);
    assert_eq!(session["user"]["role"], "terapeuta");
    // Two hours of use: the dashboard refreshes at `exp - 15 min` of each access token.
    let mut used = Vec::new();
    for _ in 0..8 {
        let access = jwt_payload(session["accessToken"].as_str().unwrap());
        let refresh = jwt_payload(session["refreshToken"].as_str().unwrap());
        let lifetime = access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap();
        assert!(
            lifetime > 15 * 60,
            "a refresh is scheduled at exp - 15 min: lifetime {lifetime}s"
        );
        assert!(refresh["exp"].as_i64().unwrap() > access["exp"].as_i64().unwrap());
        assert!(
            refresh.get("role").is_none(),
            "a refresh token is no access token"
        );
        let me = app
            .client
            .get(app.url("/api/auth/me"))
            .header("Authorization", bearer(&session))
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200);
        let refresh_token = session["refreshToken"].as_str().unwrap().to_owned();
        // A refresh token never opens a route.
        let r = app
            .client
            .get(app.url("/api/auth/me"))
            .header("Authorization", format!("Bearer {refresh_token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        used.push(refresh_token.clone());
        let r = app
            .post_json("/api/auth/refresh", &json!({ "refreshToken": refresh_token }))
            .await;
        assert_eq!(r.status(), 200);
        session = json_body(r).await;
    }
    // Rotation and reuse detection hold with JWT-shaped tokens: an old one ends the family.
    let r = app
        .post_json("/api/auth/refresh", &json!({ "refreshToken": used[0] }))
        .await;
    assert_error(r, 401, "TOKEN_REUSED").await;
    let r = app
        .post_json(
            "/api/auth/refresh",
            &json!({ "refreshToken": session["refreshToken"] }),
        )
        .await;
    assert_eq!(r.status(), 401, "the whole family was revoked");
}
