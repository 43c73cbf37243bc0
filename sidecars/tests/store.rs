//! The management API (LiteLLM's) and the internal API the gateway calls, over real HTTP, on
//! SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{event, now_ms, Kind, Server, MASTER};
use reqwest::Method;
use serde_json::{json, Value};
use switchyard_sidecar::store::keys::hash_key;

both!(
    key_lifecycle,
    key_fields_in_litellm_names,
    key_list_pages_and_filters,
    users_teams_and_members,
    customers,
    budget_periods_reset,
    spend_is_idempotent,
    spend_reports_add_up,
    spend_at_a_high_rate,
    changes_long_poll,
    auth,
    no_master_key_configured,
    bad_input_names_the_field,
    migrations_are_applied_once,
    model_info_has_no_secrets,
    generated_keys_get_the_configs_defaults,
    old_spend_logs_are_deleted,
);

/// general_settings.maximum_spend_logs_retention_period: logs older go, sums stay.
async fn old_spend_logs_are_deleted(kind: Kind) {
    let mut config = common::config();
    config.general_settings.maximum_spend_logs_retention_period = Some("1d".into());
    config
        .general_settings
        .maximum_spend_logs_retention_interval = Some("1s".into());
    let s = Server::start_with(kind, config).await;
    let k = s.post("/key/generate", json!({})).await;
    let hash = k["token_id"].as_str().unwrap().to_string();
    let mut old = event("old", &hash, 1.0);
    let two_days = 2 * 86_400_000;
    old["start_ms"] = json!(now_ms() - two_days);
    old["end_ms"] = json!(now_ms() - two_days + 100);
    s.spend(vec![old, event("new", &hash, 2.0)]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = s.get("/spend/logs").await;
        let ids: Vec<&str> = logs
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l["request_id"].as_str())
            .collect();
        if ids == ["new"] {
            break;
        }
        assert!(Instant::now() < deadline, "still {ids:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let info = s.get(&format!("/key/info?key={hash}")).await;
    assert_eq!(info["info"]["spend"], 3.0, "the key's spend keeps both");
    let bad = common::config();
    let mut bad = bad;
    bad.general_settings.maximum_spend_logs_retention_period = Some("forever".into());
    let err = switchyard_sidecar::service::AppState::new(bad)
        .err()
        .unwrap();
    assert!(err.contains("maximum_spend_logs_retention_period"), "{err}");
}

/// litellm_settings.default_key_generate_params fill what /key/generate leaves out.
async fn generated_keys_get_the_configs_defaults(kind: Kind) {
    let mut config = common::config();
    config.litellm_settings.default_key_generate_params = json!({
        "models": ["gpt-4o-mini"], "max_budget": 2.5, "rpm_limit": 30, "duration": "7d"
    })
    .as_object()
    .cloned();
    let s = Server::start_with(kind, config).await;
    let made = s.post("/key/generate", json!({"max_budget": 9.0})).await;
    let key = made["key"].as_str().unwrap();
    let info = &s.get(&format!("/key/info?key={key}")).await["info"];
    assert_eq!(info["models"], json!(["gpt-4o-mini"]), "{info}");
    assert_eq!(info["max_budget"], 9.0, "the request's own wins");
    assert_eq!(info["rpm_limit"], 30);
    assert!(info["expires"].is_string(), "duration: {info}");
    // A default no key could have stops the start with its name.
    let mut bad = common::config();
    bad.litellm_settings.default_key_generate_params =
        json!({"max_budget": "lots"}).as_object().cloned();
    let err = switchyard_sidecar::service::AppState::new(bad)
        .err()
        .unwrap();
    assert!(err.contains("default_key_generate_params"), "{err}");
}

async fn key_lifecycle(kind: Kind) {
    let s = Server::start(kind).await;
    let made = s
        .post(
            "/key/generate",
            json!({"key_alias": "ci", "models": ["gpt-4o"], "max_budget": 10.0}),
        )
        .await;
    let key = made["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("sk-") && key.len() >= 3 + 22, "{key}");
    let hash = hash_key(&key);
    assert_eq!(made["token_id"], hash.as_str());
    assert_eq!(made["key_name"], format!("sk-...{}", &key[key.len() - 4..]));

    // Info, by the master key and by the key itself; the hash is not in `info`.
    let info = s.get(&format!("/key/info?key={key}")).await;
    assert_eq!(info["key"], key.as_str());
    assert_eq!(info["info"]["key_alias"], "ci");
    assert_eq!(info["info"]["max_budget"], 10.0);
    assert!(info["info"].get("token").is_none());
    let (status, own) = s.call(Method::GET, "/key/info", None, Some(&key)).await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["info"]["key_alias"], "ci");
    assert_eq!(
        own["key"],
        hash.as_str(),
        "the key itself is never echoed back"
    );

    // The gateway's record.
    let (status, record) = s.record(&hash).await;
    assert_eq!(status, 200);
    assert_eq!(record["token"], hash.as_str());
    assert_eq!(record["models"], json!(["gpt-4o"]));
    assert_eq!(record["key_budget"]["max_budget"], 10.0);
    assert_eq!(record["blocked"], false);

    // Update: the fields given change, the others stay.
    let updated = s
        .post(
            "/key/update",
            json!({"key": key, "max_budget": 20.0, "rpm_limit": 5}),
        )
        .await;
    assert_eq!(updated["max_budget"], 20.0);
    assert_eq!(updated["key_alias"], "ci");
    let (_, record) = s.record(&hash).await;
    assert_eq!(record["key_budget"]["max_budget"], 20.0);
    assert_eq!(record["key_limits"]["rpm_limit"], 5);

    // Block and unblock (by the hash, as LiteLLM accepts).
    let blocked = s.post("/key/block", json!({"key": hash})).await;
    assert_eq!(blocked["blocked"], true);
    assert_eq!(s.record(&hash).await.1["blocked"], true);
    let (status, _) = s.call(Method::GET, "/key/info", None, Some(&key)).await;
    assert_eq!(status, 401, "a blocked key reads nothing");
    let unblocked = s.post("/key/unblock", json!({"key": key})).await;
    assert_eq!(unblocked["blocked"], false);
    assert_eq!(s.record(&hash).await.1["blocked"], false);

    // Regenerate: a new key for the same record; the old one is gone.
    let fresh = s
        .post("/key/regenerate", json!({"key": key, "max_budget": 30.0}))
        .await;
    let new_key = fresh["key"].as_str().unwrap().to_string();
    assert_ne!(new_key, key);
    assert_eq!(fresh["key_alias"], "ci");
    assert_eq!(fresh["max_budget"], 30.0);
    assert_eq!(s.record(&hash).await.0, 404);
    let (status, record) = s.record(&hash_key(&new_key)).await;
    assert_eq!(status, 200);
    assert_eq!(record["key_budget"]["max_budget"], 30.0);
    // The path form, with a key of our choosing.
    let chosen = s
        .post(
            &format!("/key/{new_key}/regenerate"),
            json!({"new_key": "sk-chosen-by-me"}),
        )
        .await;
    assert_eq!(chosen["key"], "sk-chosen-by-me");
    assert_eq!(s.record(&hash_key(&new_key)).await.0, 404);

    // Delete.
    let deleted = s
        .post("/key/delete", json!({"keys": ["sk-chosen-by-me"]}))
        .await;
    assert_eq!(deleted, json!({"deleted_keys": ["sk-chosen-by-me"]}));
    assert_eq!(s.record(&hash_key("sk-chosen-by-me")).await.0, 404);
    let (status, err) = s
        .call(
            Method::GET,
            "/key/info?key=sk-chosen-by-me",
            None,
            Some(MASTER),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["param"], "key");

    // By alias.
    s.post("/key/generate", json!({"key_alias": "gone"})).await;
    s.post("/key/delete", json!({"key_aliases": ["gone"]}))
        .await;
    let (status, _) = s
        .post_err("/key/delete", json!({"key_aliases": ["gone"]}))
        .await;
    assert_eq!(status, 404);
    s.stop().await;
}

async fn key_fields_in_litellm_names(kind: Kind) {
    let s = Server::start(kind).await;
    s.post(
        "/team/new",
        json!({"team_id": "t1", "models": ["gpt-4o", "claude"], "max_budget": 100.0, "rpm_limit": 60}),
    )
    .await;
    s.post(
        "/user/new",
        json!({"user_id": "u1", "max_budget": 50.0, "auto_create_key": false, "tpm_limit": 5000}),
    )
    .await;
    let made = s
        .post(
            "/key/generate",
            json!({
                "key_alias": "all-fields",
                "duration": "30d",
                "models": ["gpt-4o"],
                "max_budget": 10.5,
                "soft_budget": 8.0,
                "budget_duration": "1d",
                "tpm_limit": 1000,
                "rpm_limit": 10,
                "max_parallel_requests": 3,
                "metadata": {"owner": "ci"},
                "tags": ["a", "b"],
                "aliases": {"fast": "gpt-4o"},
                "user_id": "u1",
                "team_id": "t1",
                "config": {"ignored": true},
                "permissions": {},
            }),
        )
        .await;
    let before = now_ms();
    for (field, want) in [
        ("key_alias", json!("all-fields")),
        ("models", json!(["gpt-4o"])),
        ("max_budget", json!(10.5)),
        ("soft_budget", json!(8.0)),
        ("budget_duration", json!("1d")),
        ("tpm_limit", json!(1000)),
        ("rpm_limit", json!(10)),
        ("max_parallel_requests", json!(3)),
        ("metadata", json!({"owner": "ci", "tags": ["a", "b"]})),
        ("aliases", json!({"fast": "gpt-4o"})),
        ("user_id", json!("u1")),
        ("team_id", json!("t1")),
        ("blocked", json!(false)),
        ("spend", json!(0.0)),
    ] {
        assert_eq!(made[field], want, "{field} in {made}");
    }
    let expires = humantime::parse_rfc3339(made["expires"].as_str().unwrap()).unwrap();
    let expires_ms = expires
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let thirty_days = 30 * 86_400_000;
    assert!(expires_ms.abs_diff(before + thirty_days) < 60_000, "{made}");
    assert!(made["budget_reset_at"].is_string());

    let (_, r) = s.record(made["token_id"].as_str().unwrap()).await;
    assert_eq!(r["key_alias"], "all-fields");
    assert_eq!(r["user_id"], "u1");
    assert_eq!(r["team_id"], "t1");
    assert_eq!(r["team_models"], json!(["gpt-4o", "claude"]));
    assert_eq!(r["aliases"], json!({"fast": "gpt-4o"}));
    assert_eq!(r["metadata"]["tags"], json!(["a", "b"]));
    assert_eq!(r["key_budget"]["max_budget"], 10.5);
    assert!(r["key_budget"]["resets_at_ms"].as_u64().unwrap() > before);
    assert_eq!(r["user_budget"]["max_budget"], 50.0);
    assert_eq!(r["team_budget"]["max_budget"], 100.0);
    assert_eq!(r["team_blocked"], false);
    assert_eq!(r["key_limits"]["tpm_limit"], 1000);
    assert_eq!(r["key_limits"]["max_parallel_requests"], 3);
    assert_eq!(
        r["user_limits"]["tpm_limit"], 5000,
        "the user's limits ride along"
    );
    assert_eq!(r["team_limits"]["rpm_limit"], 60, "and the team's");
    assert!(r["expires_ms"].as_u64().unwrap().abs_diff(expires_ms) < 1000);

    // A key of one's own choosing (keys moved over from a LiteLLM proxy).
    let own = s
        .post("/key/generate", json!({"key": "sk-imported-123"}))
        .await;
    assert_eq!(own["key"], "sk-imported-123");
    let (status, _) = s
        .post_err("/key/generate", json!({"key": "sk-imported-123"}))
        .await;
    assert_eq!(status, 409);
    s.stop().await;
}

async fn key_list_pages_and_filters(kind: Kind) {
    let s = Server::start(kind).await;
    s.post("/team/new", json!({"team_id": "t"})).await;
    let mut hashes = Vec::new();
    for i in 0..5 {
        let team = if i % 2 == 0 { json!("t") } else { Value::Null };
        let k = s
            .post(
                "/key/generate",
                json!({"key_alias": format!("k{i}"), "user_id": "u", "team_id": team}),
            )
            .await;
        hashes.push(k["token_id"].as_str().unwrap().to_string());
    }
    let page = s.get("/key/list?page=1&size=2").await;
    assert_eq!(page["total_count"], 5);
    assert_eq!(page["current_page"], 1);
    assert_eq!(page["total_pages"], 3);
    assert_eq!(page["keys"].as_array().unwrap().len(), 2);
    assert!(page["keys"][0].is_string(), "hashes by default");
    let last = s.get("/key/list?page=3&size=2").await;
    assert_eq!(last["keys"].as_array().unwrap().len(), 1);
    let team = s.get("/key/list?team_id=t&return_full_object=true").await;
    assert_eq!(team["total_count"], 3);
    assert!(
        team["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["team_id"] == "t"
                && hashes.contains(&k["token"].as_str().unwrap().to_string()))
    );
    let alias = s.get("/key/list?key_alias=k3").await;
    assert_eq!(alias["keys"], json!([hashes[3]]));
    let user = s.get("/key/list?user_id=u&size=100").await;
    assert_eq!(user["total_count"], 5);
    s.stop().await;
}

async fn users_teams_and_members(kind: Kind) {
    let s = Server::start(kind).await;
    // A team with a member, and a user created into it with a key.
    let team = s
        .post(
            "/team/new",
            json!({
                "team_id": "search",
                "team_alias": "Search",
                "models": ["gpt-4o"],
                "max_budget": 100.0,
                "budget_duration": "30d",
                "members_with_roles": [{"user_id": "lead", "role": "admin"}],
            }),
        )
        .await;
    assert_eq!(team["team_alias"], "Search");
    assert_eq!(
        team["members_with_roles"],
        json!([{"user_id": "lead", "user_email": null, "role": "admin"}])
    );
    let user = s
        .post(
            "/user/new",
            json!({
                "user_id": "ana",
                "user_email": "ana@example.com",
                "user_role": "internal_user",
                "max_budget": 20.0,
                "models": ["gpt-4o"],
                "teams": ["search"],
                "duration": "1h",
                "key_alias": "ana-key",
            }),
        )
        .await;
    let ana_key = user["key"].as_str().unwrap().to_string();
    assert_eq!(user["user_id"], "ana");
    assert_eq!(user["user_email"], "ana@example.com");
    assert_eq!(user["teams"], json!(["search"]));
    assert_eq!(user["max_budget"], 20.0);
    assert!(user["expires"].is_string());
    let (_, r) = s.record(&hash_key(&ana_key)).await;
    assert_eq!(r["user_id"], "ana");
    assert_eq!(r["user_budget"]["max_budget"], 20.0);
    assert_eq!(r["models"], json!(["gpt-4o"]));

    // A team key of ana's.
    let team_key = s
        .post(
            "/key/generate",
            json!({"user_id": "ana", "team_id": "search"}),
        )
        .await;
    let team_hash = team_key["token_id"].as_str().unwrap().to_string();

    let info = s.get("/user/info?user_id=ana").await;
    assert_eq!(info["user_info"]["user_email"], "ana@example.com");
    assert_eq!(info["keys"].as_array().unwrap().len(), 2);
    assert_eq!(info["teams"][0]["team_id"], "search");

    // A member added by email becomes a user.
    let added = s
        .post(
            "/team/member_add",
            json!({"team_id": "search", "member": [{"user_email": "bo@example.com", "role": "user"}], "max_budget_in_team": 5.0}),
        )
        .await;
    assert_eq!(added["updated_users"][0]["user_email"], "bo@example.com");
    let memberships = added["updated_team_memberships"].as_array().unwrap();
    assert_eq!(memberships.len(), 3);
    let bo = added["updated_users"][0]["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(memberships
        .iter()
        .any(|m| m["user_id"] == bo.as_str() && m["litellm_budget_table"]["max_budget"] == 5.0));
    let info = s.get("/team/info?team_id=search").await;
    assert_eq!(info["team_info"]["max_budget"], 100.0);
    assert_eq!(info["keys"].as_array().unwrap().len(), 1);
    assert_eq!(info["team_memberships"].as_array().unwrap().len(), 3);

    // A team's budget change reaches its keys' records and the change log.
    let seq = s.changes(u64::MAX).await["seq"].as_u64().unwrap();
    let updated = s
        .post(
            "/team/update",
            json!({"team_id": "search", "max_budget": 50.0, "blocked": true}),
        )
        .await;
    assert_eq!(updated["max_budget"], 50.0);
    let (_, r) = s.record(&team_hash).await;
    assert_eq!(r["team_budget"]["max_budget"], 50.0);
    assert_eq!(r["team_blocked"], true);
    let changes = s.changes(seq).await;
    assert_eq!(changes["keys"], json!([team_hash]));

    // A user's update reaches both of ana's keys.
    let seq = changes["seq"].as_u64().unwrap();
    let u = s
        .post(
            "/user/update",
            json!({"user_id": "ana", "max_budget": 25.0}),
        )
        .await;
    assert_eq!(u["max_budget"], 25.0);
    let changes = s.changes(seq).await;
    assert_eq!(changes["keys"].as_array().unwrap().len(), 2);
    assert_eq!(
        s.record(&team_hash).await.1["user_budget"]["max_budget"],
        25.0
    );
    // By email too.
    s.post(
        "/user/update",
        json!({"user_email": "ana@example.com", "user_alias": "Ana"}),
    )
    .await;
    assert_eq!(
        s.get("/user/info?user_id=ana").await["user_info"]["user_alias"],
        "Ana"
    );

    let list = s.get("/user/list?team=search").await;
    assert_eq!(list["total"], 3);
    let ana = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user_id"] == "ana")
        .unwrap();
    assert_eq!(ana["key_count"], 2);
    let list = s.get("/user/list?user_ids=ana,lead&page_size=1").await;
    assert_eq!(list["total"], 2);
    assert_eq!(list["total_pages"], 2);
    let teams = s.get("/team/list").await;
    assert_eq!(teams.as_array().unwrap().len(), 1);
    assert_eq!(teams[0]["keys"].as_array().unwrap().len(), 1);
    assert_eq!(s.get("/team/list?user_id=nobody").await, json!([]));

    // Leaving the team.
    let seq = s.changes(u64::MAX).await["seq"].as_u64().unwrap();
    let left = s
        .post(
            "/team/member_delete",
            json!({"team_id": "search", "user_id": "ana"}),
        )
        .await;
    assert_eq!(left["members_with_roles"].as_array().unwrap().len(), 2);
    assert_eq!(s.changes(seq).await["keys"], json!([team_hash]));
    let (status, _) = s
        .post_err(
            "/team/member_delete",
            json!({"team_id": "search", "user_id": "ana"}),
        )
        .await;
    assert_eq!(status, 404);

    // Deleting a user deletes their keys; deleting a team, its keys.
    assert_eq!(
        s.post("/user/delete", json!({"user_ids": ["ana"]})).await,
        json!(1)
    );
    assert_eq!(s.record(&hash_key(&ana_key)).await.0, 404);
    assert_eq!(s.record(&team_hash).await.0, 404);
    let (status, _) = s
        .call(Method::GET, "/user/info?user_id=ana", None, Some(MASTER))
        .await;
    assert_eq!(status, 404);
    let kept = s.post("/key/generate", json!({"team_id": "search"})).await;
    assert_eq!(
        s.post("/team/delete", json!({"team_ids": ["search"]}))
            .await,
        json!(1)
    );
    assert_eq!(s.record(kept["token_id"].as_str().unwrap()).await.0, 404);
    let (status, _) = s
        .post_err("/team/delete", json!({"team_ids": ["search"]}))
        .await;
    assert_eq!(status, 404);
    s.stop().await;
}

async fn customers(kind: Kind) {
    let s = Server::start(kind).await;
    // Unknown: no budget, not blocked.
    let (status, c) = s
        .call(Method::GET, "/internal/v1/customers/some%20one", None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        c,
        json!({"user_id": "some one", "blocked": false, "budget": {"max_budget": null, "spend": 0.0, "resets_at_ms": null}, "limits": {"rpm_limit": null, "tpm_limit": null, "max_parallel_requests": null}})
    );

    let made = s
        .post(
            "/customer/new",
            json!({"user_id": "acme", "alias": "ACME", "max_budget": 5.0, "budget_duration": "1mo", "allowed_model_region": "eu", "rpm_limit": 30}),
        )
        .await;
    assert_eq!(made["user_id"], "acme");
    assert_eq!(made["litellm_budget_table"]["max_budget"], 5.0);
    assert_eq!(made["allowed_model_region"], "eu");
    // LiteLLM's other name.
    let info = s.get("/end_user/info?end_user_id=acme").await;
    assert_eq!(info["alias"], "ACME");
    let (_, r) = s
        .call(Method::GET, "/internal/v1/customers/acme", None, None)
        .await;
    assert_eq!(r["budget"]["max_budget"], 5.0);
    assert!(r["budget"]["resets_at_ms"].as_u64().unwrap() > now_ms());
    assert_eq!(r["limits"]["rpm_limit"], 30);

    let seq = s.changes(u64::MAX).await["seq"].as_u64().unwrap();
    let updated = s
        .post(
            "/customer/update",
            json!({"user_id": "acme", "max_budget": 7.0}),
        )
        .await;
    assert_eq!(updated["litellm_budget_table"]["max_budget"], 7.0);
    let blocked = s
        .post("/customer/block", json!({"user_ids": ["acme"]}))
        .await;
    assert_eq!(blocked["blocked_users"][0]["blocked"], true);
    let changes = s.changes(seq).await;
    assert_eq!(changes["customers"], json!(["acme"]));
    assert_eq!(changes["keys"], json!([]));
    let (_, r) = s
        .call(Method::GET, "/internal/v1/customers/acme", None, None)
        .await;
    assert_eq!(r["blocked"], true);
    s.post("/end_user/unblock", json!({"user_ids": ["acme"]}))
        .await;

    // An end user named by a request is created by its spend.
    s.spend(vec![{
        let mut e = event("r-cust", "", 0.5);
        e["end_user"] = json!("newcomer");
        e
    }])
    .await;
    let list = s.get("/customer/list").await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme", "newcomer"]);
    assert_eq!(
        s.get("/customer/info?end_user_id=newcomer").await["spend"],
        0.5
    );
    // And given a budget later, keeping its spend.
    let given = s
        .post(
            "/customer/new",
            json!({"user_id": "newcomer", "max_budget": 1.0}),
        )
        .await;
    assert_eq!(given["spend"], 0.5);

    let deleted = s
        .post(
            "/customer/delete",
            json!({"user_ids": ["acme", "newcomer"]}),
        )
        .await;
    assert_eq!(deleted["deleted_customers"], json!(["acme", "newcomer"]));
    let (status, _) = s
        .call(
            Method::GET,
            "/customer/info?end_user_id=acme",
            None,
            Some(MASTER),
        )
        .await;
    assert_eq!(status, 404);
    s.stop().await;
}

async fn budget_periods_reset(kind: Kind) {
    let s = Server::start(kind).await;
    s.post(
        "/team/new",
        json!({"team_id": "t", "max_budget": 100.0, "budget_duration": "30d"}),
    )
    .await;
    s.post("/user/new", json!({"user_id": "u", "max_budget": 100.0, "budget_duration": "7d", "auto_create_key": false}))
        .await;
    s.post(
        "/customer/new",
        json!({"user_id": "c", "max_budget": 100.0, "budget_duration": "1d"}),
    )
    .await;
    let k = s
        .post(
            "/key/generate",
            json!({"user_id": "u", "team_id": "t", "max_budget": 10.0, "budget_duration": "1mo"}),
        )
        .await;
    let hash = k["token_id"].as_str().unwrap().to_string();
    let mut e = event("r1", &hash, 3.0);
    e["user_id"] = json!("u");
    e["team_id"] = json!("t");
    e["end_user"] = json!("c");
    s.spend(vec![e]).await;
    let (_, r) = s.record(&hash).await;
    for b in ["key_budget", "user_budget", "team_budget"] {
        assert_eq!(r[b]["spend"], 3.0, "{b}: {r}");
        assert!(
            r[b]["resets_at_ms"].as_u64().unwrap() > now_ms(),
            "{b}: {r}"
        );
    }
    // The periods end (their end moved into the past): spend starts again from 0 when read.
    for table in ["keys", "users", "teams", "end_users"] {
        s.sql(&format!("UPDATE {table} SET budget_reset_at = 1000"))
            .await;
    }
    let (_, r) = s.record(&hash).await;
    for b in ["key_budget", "user_budget", "team_budget"] {
        assert_eq!(r[b]["spend"], 0.0, "{b}: {r}");
        assert!(
            r[b]["resets_at_ms"].as_u64().unwrap() > now_ms(),
            "{b}: {r}"
        );
    }
    let (_, c) = s
        .call(Method::GET, "/internal/v1/customers/c", None, None)
        .await;
    assert_eq!(c["budget"]["spend"], 0.0);
    // ...and when spent: the new period holds only the new spend.
    s.sql("UPDATE keys SET budget_reset_at = 1000").await;
    let mut e = event("r2", &hash, 2.0);
    e["user_id"] = json!("u");
    s.spend(vec![e]).await;
    let (_, r) = s.record(&hash).await;
    assert_eq!(r["key_budget"]["spend"], 2.0);
    assert_eq!(r["user_budget"]["spend"], 2.0);
    assert_eq!(
        s.get(&format!("/key/info?key={hash}")).await["info"]["spend"],
        2.0
    );

    // In real time: a one-second period.
    let k = s
        .post(
            "/key/generate",
            json!({"max_budget": 1.0, "budget_duration": "1s"}),
        )
        .await;
    let short = k["token_id"].as_str().unwrap().to_string();
    s.spend(vec![event("r3", &short, 0.5)]).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, r) = s.record(&short).await;
    assert_eq!(r["key_budget"]["spend"], 0.0, "{r}");
    s.stop().await;
}

async fn spend_is_idempotent(kind: Kind) {
    let s = Server::start(kind).await;
    s.post("/team/new", json!({"team_id": "t"})).await;
    s.post(
        "/user/new",
        json!({"user_id": "u", "teams": ["t"], "auto_create_key": false}),
    )
    .await;
    let k = s
        .post("/key/generate", json!({"user_id": "u", "team_id": "t"}))
        .await;
    let hash = k["token_id"].as_str().unwrap().to_string();
    let batch: Vec<Value> = (0..3)
        .map(|i| {
            let mut e = event(&format!("req-{i}"), &hash, 0.25);
            e["user_id"] = json!("u");
            e["team_id"] = json!("t");
            e["end_user"] = json!("c");
            e
        })
        .collect();
    assert_eq!(
        s.spend(batch.clone()).await,
        json!({"stored": 3, "duplicates": 0})
    );
    assert_eq!(
        s.spend(batch.clone()).await,
        json!({"stored": 0, "duplicates": 3})
    );
    let mut mixed = vec![batch[0].clone()];
    mixed.push(event("req-3", &hash, 0.25));
    assert_eq!(s.spend(mixed).await, json!({"stored": 1, "duplicates": 1}));
    // One event twice in a batch, and a batch longer than one INSERT: each counted once.
    let long: Vec<Value> = (100..350)
        .map(|i| event(&format!("req-{}", i.min(101)), &hash, 0.0))
        .collect();
    assert_eq!(s.spend(long).await, json!({"stored": 2, "duplicates": 248}));
    // The same batch sent at once by several gateways: still once.
    let again: Vec<Value> = (10..20)
        .map(|i| event(&format!("req-{i}"), &hash, 0.5))
        .collect();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (base, body) = (s.base.clone(), json!({"events": again.clone()}));
        tasks.push(tokio::spawn(async move {
            let resp = reqwest::Client::new()
                .post(format!("{base}/internal/v1/spend"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()["stored"]
                .as_u64()
                .unwrap()
        }));
    }
    let mut stored = 0;
    for t in tasks {
        stored += t.await.unwrap();
    }
    assert_eq!(
        stored, 10,
        "each event stored by exactly one of the concurrent batches"
    );
    let (_, r) = s.record(&hash).await;
    assert_eq!(r["key_budget"]["spend"], 4.0 * 0.25 + 10.0 * 0.5);
    assert_eq!(r["user_budget"]["spend"], 0.75);
    assert_eq!(r["team_budget"]["spend"], 0.75);
    let team = s.get("/team/info?team_id=t").await;
    assert_eq!(team["team_memberships"][0]["spend"], 0.75);
    assert_eq!(s.get("/customer/info?end_user_id=c").await["spend"], 0.75);
    assert_eq!(s.get("/spend/logs").await.as_array().unwrap().len(), 16);
    assert_eq!(s.get("/global/spend").await["spend"], 6.0);
    // A bad event refuses the whole batch: nothing of it is stored.
    let mut bad = vec![event("req-ok", &hash, 1.0), event("", &hash, 1.0)];
    bad[1]["request_id"] = json!("");
    let (status, err) = s
        .call(
            Method::POST,
            "/internal/v1/spend",
            Some(&json!({"events": bad})),
            None,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["param"], "events[1].request_id");
    assert_eq!(s.get("/spend/logs?request_id=req-ok").await, json!([]));
    s.stop().await;
}

async fn spend_reports_add_up(kind: Kind) {
    let s = Server::start(kind).await;
    s.post("/team/new", json!({"team_id": "t1", "team_alias": "One"}))
        .await;
    s.post("/team/new", json!({"team_id": "t2", "team_alias": "Two"}))
        .await;
    let k1 = s
        .post("/key/generate", json!({"team_id": "t1", "user_id": "u1"}))
        .await;
    let k2 = s
        .post("/key/generate", json!({"team_id": "t2", "user_id": "u2"}))
        .await;
    let (h1, h2) = (
        k1["token_id"].as_str().unwrap().to_string(),
        k2["token_id"].as_str().unwrap().to_string(),
    );
    let day1 = humantime::parse_rfc3339("2026-11-01T10:00:00Z").unwrap();
    let day2 = humantime::parse_rfc3339("2026-11-02T23:59:00Z").unwrap();
    let ms = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
    };
    let mut events = Vec::new();
    for (i, (hash, team, user, group, cost, when, customer)) in [
        (&h1, "t1", "u1", "gpt-4o", 1.0, day1, "c1"),
        (&h1, "t1", "u1", "claude", 2.0, day1, "c2"),
        (&h2, "t2", "u2", "gpt-4o", 4.0, day1, "c1"),
        (&h1, "t1", "u1", "gpt-4o", 8.0, day2, "c1"),
        (&h2, "t2", "u2", "claude", 16.0, day2, "c2"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut e = event(&format!("rep-{i}"), hash, cost);
        e["team_id"] = json!(team);
        e["user_id"] = json!(user);
        e["model_group"] = json!(group);
        e["end_user"] = json!(customer);
        e["start_ms"] = json!(ms(when));
        e["end_ms"] = json!(ms(when) + 10);
        events.push(e);
    }
    s.spend(events).await;
    let range = "start_date=2026-11-01&end_date=2026-11-02";
    let total = |report: &Value, list: &str| -> f64 {
        report
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|d| d[list].as_array().unwrap().iter())
            .map(|g| g["total_spend"].as_f64().unwrap())
            .sum()
    };
    let by_team = s.get(&format!("/global/spend/report?{range}")).await;
    assert_eq!(by_team.as_array().unwrap().len(), 2);
    assert_eq!(by_team[0]["group_by_day"], "2026-11-01");
    assert_eq!(by_team[0]["teams"][0]["team_name"], "One");
    assert_eq!(by_team[0]["teams"][0]["total_spend"], 3.0);
    assert_eq!(by_team[0]["teams"][1]["total_spend"], 4.0);
    let metadata = by_team[0]["teams"][0]["metadata"].as_array().unwrap();
    assert_eq!(metadata.len(), 2);
    assert_eq!(metadata[0]["total_tokens"], 15);
    assert_eq!(total(&by_team, "teams"), 31.0);
    for (group_by, list) in [
        ("customer", "customers"),
        ("api_key", "api_keys"),
        ("model", "models"),
        ("user", "users"),
    ] {
        let report = s
            .get(&format!("/global/spend/report?{range}&group_by={group_by}"))
            .await;
        assert_eq!(total(&report, list), 31.0, "{group_by}: {report}");
    }
    let by_model = s
        .get(&format!("/global/spend/report?{range}&group_by=model"))
        .await;
    assert_eq!(by_model[1]["models"][0]["model"], "claude");
    assert_eq!(by_model[1]["models"][0]["total_spend"], 16.0);
    // Filters.
    let one_key = s
        .get(&format!("/global/spend/report?{range}&api_key={h1}"))
        .await;
    assert_eq!(total(&one_key, "teams"), 11.0);
    let one_team = s
        .get(&format!(
            "/global/spend/report?{range}&team_id=t2&group_by=customer"
        ))
        .await;
    assert_eq!(total(&one_team, "customers"), 20.0);
    let one_day = s
        .get("/global/spend/report?start_date=2026-11-02&end_date=2026-11-02")
        .await;
    assert_eq!(total(&one_day, "teams"), 24.0);
    assert_eq!(s.get("/global/spend").await["spend"], 31.0);

    // The logs, by key, user, request and day.
    let logs = s.get(&format!("/spend/logs?api_key={h1}")).await;
    assert_eq!(logs.as_array().unwrap().len(), 3);
    assert_eq!(
        logs[0]["startTime"], "2026-11-02T23:59:00.000Z",
        "newest first"
    );
    assert_eq!(logs[0]["call_type"], "acompletion");
    assert_eq!(logs[0]["total_tokens"], 15);
    assert_eq!(logs[0]["user"], "u1");
    assert_eq!(logs[0]["cache_hit"], "False");
    let sum: f64 = logs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["spend"].as_f64().unwrap())
        .sum();
    assert_eq!(sum, 11.0);
    assert_eq!(
        s.get("/spend/logs?user_id=u2")
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        s.get("/spend/logs?request_id=rep-4").await[0]["spend"],
        16.0
    );
    let day = s
        .get("/spend/logs?start_date=2026-11-01&end_date=2026-11-01")
        .await;
    assert_eq!(day.as_array().unwrap().len(), 3);
    s.stop().await;
}

async fn spend_at_a_high_rate(kind: Kind) {
    let s = Server::start(kind).await;
    s.post("/team/new", json!({"team_id": "t"})).await;
    let k = s
        .post("/key/generate", json!({"team_id": "t", "user_id": "u"}))
        .await;
    let hash = k["token_id"].as_str().unwrap().to_string();
    // Costs that add up exactly in binary floating point.
    let costs = [0.125, 0.25, 0.5, 1.0];
    let batches: Vec<Vec<Value>> = (0..50)
        .map(|b| {
            (0..100)
                .map(|i| {
                    let mut e = event(&format!("hr-{b}-{i}"), &hash, costs[i % 4]);
                    e["team_id"] = json!("t");
                    e["user_id"] = json!("u");
                    e["end_user"] = json!(format!("c{}", i % 7));
                    e["model_group"] = json!(if i % 2 == 0 { "a" } else { "b" });
                    e
                })
                .collect()
        })
        .collect();
    let expected: f64 = batches
        .iter()
        .flatten()
        .map(|e| e["cost"].as_f64().unwrap())
        .sum();
    let started = Instant::now();
    // Four gateways at once.
    let mut tasks = Vec::new();
    for chunk in batches.chunks(13) {
        let (base, chunk) = (s.base.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for batch in chunk {
                let resp = client
                    .post(format!("{base}/internal/v1/spend"))
                    .json(&json!({"events": batch}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    eprintln!("{kind:?}: 5000 events in 50 batches in {elapsed:?}");
    let (_, r) = s.record(&hash).await;
    assert_eq!(r["key_budget"]["spend"].as_f64().unwrap(), expected);
    assert_eq!(r["team_budget"]["spend"].as_f64().unwrap(), expected);
    assert_eq!(
        s.get("/global/spend").await["spend"].as_f64().unwrap(),
        expected
    );
    let customers: f64 = s
        .get("/customer/list")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["spend"].as_f64().unwrap())
        .sum();
    assert_eq!(customers, expected);
    let report = s.get("/global/spend/report?group_by=model").await;
    let by_model: f64 = report
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["models"].as_array().unwrap().iter())
        .map(|g| g["total_spend"].as_f64().unwrap())
        .sum();
    assert_eq!(by_model, expected);
    let logs = s.get("/spend/logs?limit=100000").await;
    assert_eq!(logs.as_array().unwrap().len(), 5000);
    // Replaying every batch changes nothing.
    let ack = s.spend(batches[7].clone()).await;
    assert_eq!(ack, json!({"stored": 0, "duplicates": 100}));
    assert_eq!(
        s.record(&hash).await.1["key_budget"]["spend"]
            .as_f64()
            .unwrap(),
        expected
    );
    s.stop().await;
}

async fn changes_long_poll(kind: Kind) {
    let s = Server::start(kind).await;
    // A gateway that knows nothing (0), or is ahead of this log: drop everything, at once.
    let ahead = s.changes(1_000).await;
    assert_eq!(ahead["all"], true);
    let seq = ahead["seq"].as_u64().unwrap();
    let k = s.post("/key/generate", json!({})).await;
    let key = k["key"].as_str().unwrap().to_string();
    let hash = k["token_id"].as_str().unwrap().to_string();
    assert_eq!(
        s.changes(u64::MAX).await["seq"].as_u64().unwrap(),
        seq,
        "a new key changes nothing cached"
    );

    // Immediate: something changed after N.
    s.post("/key/block", json!({"key": key})).await;
    let started = Instant::now();
    let c = s.changes(seq).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(c["keys"], json!([hash]));
    assert_eq!(c["all"], false);
    let seq = c["seq"].as_u64().unwrap();

    // Waiting: nothing yet, then a change wakes the poll.
    let (base, poll_seq) = (s.base.clone(), seq);
    let poll = tokio::spawn(async move {
        let started = Instant::now();
        let v: Value = reqwest::get(format!("{base}/internal/v1/changes?after={poll_seq}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (v, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!poll.is_finished(), "the poll waits while nothing changes");
    s.post("/key/unblock", json!({"key": key})).await;
    let (v, waited) = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v["keys"], json!([hash]));
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(3),
        "{waited:?}"
    );

    // The sequence survives a restart; a waiting poll ends when the sidecar stops.
    let seq = v["seq"].as_u64().unwrap();
    let (base, poll_seq) = (s.base.clone(), seq);
    let poll = tokio::spawn(async move {
        reqwest::get(format!("{base}/internal/v1/changes?after={poll_seq}")).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopping = Instant::now();
    let db = s.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "the long-poll let the sidecar stop"
    );
    let _ = poll.await;
    let s = Server::on(db, common::config()).await;
    assert_eq!(s.changes(u64::MAX).await["seq"].as_u64().unwrap(), seq);
    s.post("/key/delete", json!({"keys": [key]})).await;
    let c = s.changes(seq).await;
    assert_eq!(c["seq"].as_u64().unwrap(), seq + 1);
    assert_eq!(c["keys"], json!([hash]));
    s.stop().await;
}

async fn auth(kind: Kind) {
    let s = Server::start(kind).await;
    let a = s.post("/key/generate", json!({"key_alias": "a"})).await;
    let b = s.post("/key/generate", json!({"key_alias": "b"})).await;
    let (ka, kb) = (a["key"].as_str().unwrap(), b["key"].as_str().unwrap());

    let (status, err) = s
        .call(Method::POST, "/key/generate", Some(&json!({})), None)
        .await;
    assert_eq!(status, 401);
    assert_eq!(err["error"]["type"], "auth_error");
    assert_eq!(err["error"]["code"], "401");
    let (status, _) = s
        .call(
            Method::POST,
            "/key/generate",
            Some(&json!({})),
            Some("sk-wrong"),
        )
        .await;
    assert_eq!(status, 401);
    // A virtual key is not an admin.
    for (method, path) in [
        (Method::POST, "/key/generate"),
        (Method::GET, "/key/list"),
        (Method::GET, "/user/list"),
        (Method::GET, "/global/spend"),
        (Method::GET, "/spend/logs"),
    ] {
        let body = json!({});
        let (status, err) = s.call(method, path, Some(&body), Some(ka)).await;
        assert_eq!(status, 401, "{path}: {err}");
    }
    // A key reads its own info, and only its own.
    let (status, own) = s
        .call(Method::GET, &format!("/key/info?key={ka}"), None, Some(ka))
        .await;
    assert_eq!(status, 200);
    assert_eq!(own["info"]["key_alias"], "a");
    let (status, err) = s
        .call(Method::GET, &format!("/key/info?key={kb}"), None, Some(ka))
        .await;
    assert_eq!(status, 403, "{err}");
    // LiteLLM's other headers.
    for header in ["api-key", "x-litellm-api-key"] {
        let resp = s
            .client
            .get(format!("{}/key/list", s.base))
            .header(header, MASTER)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{header}");
    }
    // /model/info: any valid key.
    let (status, _) = s.call(Method::GET, "/model/info", None, Some(kb)).await;
    assert_eq!(status, 200);
    let (status, _) = s
        .call(Method::GET, "/model/info", None, Some("sk-nope"))
        .await;
    assert_eq!(status, 401);
    // An expired key reads nothing.
    let old = s.post("/key/generate", json!({"duration": "0s"})).await;
    let (status, _) = s
        .call(
            Method::GET,
            "/key/info",
            None,
            Some(old["key"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, 401);
    s.stop().await;
}

async fn no_master_key_configured(kind: Kind) {
    let s = Server::start_with(kind, switchyard_config::ProxyConfig::default()).await;
    for (method, path) in [
        (Method::POST, "/key/generate"),
        (Method::GET, "/key/info"),
        (Method::GET, "/team/list"),
        (Method::GET, "/model/info"),
    ] {
        let (status, err) = s
            .call(method, path, Some(&json!({})), Some("sk-anything"))
            .await;
        assert_eq!(status, 403, "{path}");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.contains("general_settings.master_key"), "{message}");
    }
    // The internal API does not need it.
    assert_eq!(s.record(&hash_key("sk-x")).await.0, 404);
    s.stop().await;
}

async fn bad_input_names_the_field(kind: Kind) {
    let s = Server::start(kind).await;
    let cases = [
        ("/key/generate", json!({"max_budget": "ten"}), "max_budget"),
        ("/key/generate", json!({"max_budget": -1}), "max_budget"),
        ("/key/generate", json!({"duration": "forever"}), "duration"),
        (
            "/key/generate",
            json!({"budget_duration": "0d"}),
            "budget_duration",
        ),
        ("/key/generate", json!({"tpm_limit": -5}), "tpm_limit"),
        ("/key/generate", json!({"models": "gpt-4o"}), "models"),
        (
            "/key/generate",
            json!({"team_id": "no-such-team"}),
            "team_id",
        ),
        ("/key/generate", json!({"key": "not-sk"}), "key"),
        ("/key/update", json!({"max_budget": 1}), "key"),
        ("/key/delete", json!({}), "keys"),
        ("/user/new", json!({"user_role": "king"}), "user_role"),
        (
            "/team/new",
            json!({"members_with_roles": [{"user_id": "x", "role": "boss"}]}),
            "members_with_roles[0].role",
        ),
        ("/team/member_add", json!({"team_id": "t"}), "member"),
        ("/customer/new", json!({"alias": "no id"}), "user_id"),
        (
            "/customer/new",
            json!({"user_id": "c", "allowed_model_region": "mars"}),
            "allowed_model_region",
        ),
    ];
    for (path, body, param) in cases {
        let (status, err) = s.post_err(path, body.clone()).await;
        assert!((400..500).contains(&status), "{path} {body}: {status}");
        assert_eq!(err["error"]["param"], param, "{path} {body}: {err}");
        assert_eq!(err["error"]["code"], status.to_string());
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap()
                .contains(param.split('[').next().unwrap()),
            "{err}"
        );
    }
    for (path, param) in [
        ("/key/list?page=abc", "page"),
        ("/key/list?size=1000", "size"),
        ("/global/spend/report?group_by=planet", "group_by"),
        ("/spend/logs?start_date=yesterday", "start_date"),
        ("/user/info", "user_id"),
    ] {
        let (status, err) = s.call(Method::GET, path, None, Some(MASTER)).await;
        assert_eq!(status, 400, "{path}: {err}");
        assert_eq!(err["error"]["param"], param, "{path}: {err}");
    }
    // Not JSON at all.
    let resp = s
        .client
        .post(format!("{}/key/generate", s.base))
        .header("authorization", format!("Bearer {MASTER}"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // No body at all is an empty request.
    let resp = s
        .client
        .post(format!("{}/key/generate", s.base))
        .header("authorization", format!("Bearer {MASTER}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    s.stop().await;
}

async fn migrations_are_applied_once(kind: Kind) {
    let s = Server::start(kind).await;
    let k = s
        .post("/key/generate", json!({"key_alias": "survives"}))
        .await;
    let (_, health) = s.call(Method::GET, "/health/readiness", None, None).await;
    assert_eq!(health["db"], "connected");
    let db = s.stop().await;
    if let Some(path) = db.sqlite_path() {
        assert!(path.exists());
    }
    // A second start on the same database: nothing to apply, everything kept.
    let s = Server::on(db, common::config()).await;
    assert_eq!(s.record(k["token_id"].as_str().unwrap()).await.0, 200);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
            .await,
        2,
        "each migration once"
    );
    s.stop().await;
}

async fn model_info_has_no_secrets(kind: Kind) {
    let config = switchyard_config::load_str(
        r#"
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: sk-provider-secret-value
      api_base: https://api.openai.com/v1
      rpm: 100
      extra_headers: {X-Secret: header-secret-value}
    model_info: {id: east, max_input_tokens: 128000}
  - model_name: local
    litellm_params:
      model: openai/llama
      api_base: http://127.0.0.1:9/v1
general_settings:
  master_key: sk-master-test-key
"#,
        None,
    )
    .unwrap()
    .config;
    let s = Server::start_with(kind, config).await;
    let info = s.get("/model/info").await;
    let text = info.to_string();
    assert!(!text.contains("sk-provider-secret-value"), "{text}");
    assert!(!text.contains("header-secret-value"), "{text}");
    assert!(!text.contains(MASTER), "{text}");
    let data = info["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["model_name"], "gpt-4o");
    assert_eq!(data[0]["litellm_params"]["model"], "openai/gpt-4o");
    assert_eq!(data[0]["litellm_params"]["rpm"], 100);
    assert_eq!(data[0]["model_info"]["id"], "east");
    assert_eq!(data[0]["model_info"]["max_input_tokens"], 128000);
    assert!(data[1]["model_info"]["id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
    let one = s.get("/v1/model/info?litellm_model_id=east").await;
    assert_eq!(one["data"].as_array().unwrap().len(), 1);
    s.stop().await;
}

/// The database going away while the sidecar runs: the internal API answers 503 with a clear
/// message (the gateway keeps its cached keys), readiness says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_is_a_503_postgres() {
    let s = Server::start(Kind::Postgres).await;
    let k = s.post("/key/generate", json!({})).await;
    let hash = k["token_id"].as_str().unwrap().to_string();
    assert_eq!(s.record(&hash).await.0, 200);
    s.db.drop_now().await;
    let (status, err) = s.record(&hash).await;
    assert_eq!(status, 503, "{err}");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(message.contains("database is unavailable"), "{message}");
    assert!(message.contains("cached"), "{message}");
    let (status, _) = s
        .call(
            Method::POST,
            "/internal/v1/spend",
            Some(&json!({"events": [event("x", &hash, 1.0)]})),
            None,
        )
        .await;
    assert_eq!(status, 503);
    let (_, health) = s.call(Method::GET, "/health/readiness", None, None).await;
    assert_eq!(health["db"], "disconnected");
    s.stop().await;
}

/// A sidecar without a store (as the demo tests run it) refuses keys with a 503.
#[tokio::test]
async fn without_a_store_keys_are_503() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = switchyard_sidecar::service::AppState::new(common::config()).unwrap();
    let task = tokio::spawn(switchyard_sidecar::service::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let resp = reqwest::get(format!("{base}/internal/v1/keys/abc"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

/// Several sidecars starting at once on one new SQLite file (as end-to-end tests that start
/// several `switchyard up` in one directory do): each opens it, the migrations applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecars_starting_together_on_a_new_sqlite_file() {
    use switchyard_sidecar::store::{Store, Target};
    let dir = tempfile::tempdir().unwrap();
    let target = Target::Sqlite(dir.path().join("shared.db"));
    let opens: Vec<_> = (0..6)
        .map(|_| {
            let target = target.clone();
            tokio::spawn(async move { Store::open(&target).await.map(drop) })
        })
        .collect();
    for open in opens {
        open.await.unwrap().unwrap();
    }
}

/// The response cache's internal API: answers kept in a batch come back by key, with
/// `max_age_s` refusing older ones, and a miss is a 404.
#[tokio::test]
async fn response_cache_internal_api() {
    let s = Server::start(Kind::Sqlite).await;
    let body = json!({"entries": [
        {"key": "ns:abc", "ttl_s": 60, "body": "{\"id\":\"chatcmpl-1\"}"},
        {"key": "gone", "ttl_s": 0, "body": "{}"},
    ]});
    let (status, stored) = s
        .call(Method::POST, "/internal/v1/cache", Some(&body), None)
        .await;
    // A TTL of 0 keeps nothing: one answer stored.
    assert_eq!(
        (
            status,
            stored["stored"].as_u64(),
            stored["dropped"].as_u64()
        ),
        (200, Some(1), Some(0))
    );
    let (status, hit) = s
        .call(Method::GET, "/internal/v1/cache/ns%3Aabc", None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(hit["body"], "{\"id\":\"chatcmpl-1\"}");
    assert!(hit["stored_ms"].as_u64().unwrap() > 0);
    let (status, _) = s
        .call(Method::GET, "/internal/v1/cache/gone", None, None)
        .await;
    assert_eq!(status, 404, "a TTL of 0 keeps nothing");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, _) = s
        .call(
            Method::GET,
            "/internal/v1/cache/ns%3Aabc?max_age_s=1",
            None,
            None,
        )
        .await;
    assert_eq!(status, 404, "older than s-maxage");
    s.stop().await;
}
