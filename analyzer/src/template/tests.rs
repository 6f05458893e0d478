use super::*;
use crate::observe::{path_key, ObservationKey};

/// Templates raw `(path, requests)` pairs of one service (all GET) and
/// returns `template → total requests`.
fn templates(paths: &[(&str, u64)]) -> BTreeMap<String, u64> {
    let keys: Vec<ObservationKey> = paths
        .iter()
        .map(|(p, _)| ObservationKey {
            service: "svc".into(),
            method: "GET".into(),
            path: path_key(p).0,
        })
        .collect();
    // Equal keys are one observation, as in the real aggregation.
    let mut merged: BTreeMap<&ObservationKey, u64> = BTreeMap::new();
    for (k, (_, n)) in keys.iter().zip(paths) {
        *merged.entry(k).or_insert(0) += n;
    }
    let obs: Vec<(&ObservationKey, u64)> = merged.into_iter().collect();
    let mut out = BTreeMap::new();
    for t in template_observations(&obs, &|_| None) {
        let n: u64 = t.members.iter().map(|&i| obs[i].1).sum();
        *out.entry(t.render()).or_insert(0) += n;
    }
    out
}

fn names(t: &BTreeMap<String, u64>) -> Vec<&str> {
    t.keys().map(String::as_str).collect()
}

#[test]
fn identifiers_by_form() {
    let t = templates(&[
        ("/api/v1/users/1", 1),
        ("/api/v1/users/22", 1),
        (
            "/api/v1/orders/d9a1e25f-ca7c-48d4-83db-9009935bab90/items",
            2,
        ),
        (
            "/api/v1/orders/6ba7b810-9dad-11d1-80b4-00c04fd430c8/items",
            1,
        ),
    ]);
    assert_eq!(
        names(&t),
        ["/api/v1/orders/{orderId}/items", "/api/v1/users/{userId}"]
    );
    assert_eq!(t["/api/v1/orders/{orderId}/items"], 3);
}

#[test]
fn versions_are_never_parameters() {
    // optic#907: `/public-specs/v2` must not become `{specId}`.
    let mut paths = vec![("/public-specs/v2", 5), ("/public-specs/v3", 5)];
    for v in ["v1", "v2", "v3", "v2.0", "v1beta1"] {
        paths.push((v, 1));
    }
    let owned: Vec<String> = ["v1", "v2", "v3", "v2.0", "v1beta1"]
        .iter()
        .map(|v| format!("/{v}/users/7"))
        .collect();
    let mut all: Vec<(&str, u64)> = owned.iter().map(|s| (s.as_str(), 1)).collect();
    all.push(("/public-specs/v2", 5));
    all.push(("/public-specs/v3", 5));
    let t = templates(&all);
    assert!(t.contains_key("/public-specs/v2"), "{t:?}");
    assert!(t.contains_key("/v2.0/users/{userId}"), "{t:?}");
    assert!(t.contains_key("/v1beta1/users/{userId}"), "{t:?}");
}

#[test]
fn me_stays_beside_the_id() {
    let mut paths: Vec<(String, u64)> = (1..=200).map(|i| (format!("/users/{i}"), 1)).collect();
    paths.push(("/users/me".into(), 80));
    let refs: Vec<(&str, u64)> = paths.iter().map(|(p, n)| (p.as_str(), *n)).collect();
    let t = templates(&refs);
    assert_eq!(names(&t), ["/users/me", "/users/{userId}"]);
    assert_eq!(t["/users/{userId}"], 200);
}

#[test]
fn me_stays_beside_word_like_names_too() {
    // Usernames are words, so only statistics make them a parameter; `me`
    // dominates its position and stays.
    let owned: Vec<String> = (0..40).map(|i| format!("/users/name{}x", i * 7)).collect();
    let mut refs: Vec<(&str, u64)> = owned.iter().map(|p| (p.as_str(), 1)).collect();
    refs.push(("/users/me", 30));
    let t = templates(&refs);
    assert_eq!(names(&t), ["/users/me", "/users/{userId}"]);
}

#[test]
fn rpc_style_names_are_constants() {
    // beyla#1849: `/api/hello.world` must stay as it is.
    let t = templates(&[("/api/hello.world", 3), ("/api/users", 2)]);
    assert_eq!(names(&t), ["/api/hello.world", "/api/users"]);
    // Twelve RPC methods, each called often: a closed set, not a parameter.
    let methods = [
        "UserService.Get",
        "UserService.List",
        "UserService.Create",
        "UserService.Delete",
        "OrderService.Get",
        "OrderService.List",
        "OrderService.Cancel",
        "CartService.Add",
        "CartService.Remove",
        "CartService.Checkout",
        "AuthService.Login",
        "AuthService.Logout",
    ];
    let owned: Vec<String> = methods.iter().map(|m| format!("/rpc/{m}")).collect();
    let refs: Vec<(&str, u64)> = owned.iter().map(|p| (p.as_str(), 25)).collect();
    let t = templates(&refs);
    assert_eq!(t.len(), methods.len());
    assert!(t.contains_key("/rpc/UserService.Get"));
}

#[test]
fn github_like_paths_with_enough_traffic() {
    let mut owned = Vec::new();
    for o in 0..60 {
        let owner = ["alice", "bob", "carol", "dave", "erin", "frank"][o % 6];
        let repo = ["shadowtap", "linux", "rust", "tokio", "serde"][o % 5];
        owned.push(format!("/{owner}{o}/{repo}-{o}/issues/{}", o * 31 + 7));
        owned.push(format!("/{owner}{o}/{repo}-{o}/pulls"));
    }
    let mut refs: Vec<(&str, u64)> = owned.iter().map(|p| (p.as_str(), 1)).collect();
    refs.push(("/search/issues", 40));
    let t = templates(&refs);
    assert_eq!(
        names(&t),
        [
            "/search/issues",
            "/{id}/{id2}/issues/{issueId}",
            "/{id}/{id2}/pulls"
        ],
        "{t:?}"
    );
    assert_eq!(t["/{id}/{id2}/issues/{issueId}"], 60);
}

#[test]
fn slugs_collapse_once_enough_values_are_seen() {
    let slugs = [
        "gold-annual",
        "silver-monthly",
        "basic-free",
        "premium-annual",
        "team-monthly",
        "enterprise-annual",
        "starter-weekly",
        "pro-monthly",
        "pro-annual",
        "family-monthly",
        "student-annual",
        "trial-daily",
    ];
    let few: Vec<String> = slugs[..4]
        .iter()
        .map(|s| format!("/plans/by-slug/{s}"))
        .collect();
    let refs: Vec<(&str, u64)> = few.iter().map(|p| (p.as_str(), 1)).collect();
    let t = templates(&refs);
    assert_eq!(t.len(), 4, "too little evidence: constants for now");

    // More evidence arrives: templating runs again over everything.
    let all: Vec<String> = slugs
        .iter()
        .map(|s| format!("/plans/by-slug/{s}"))
        .collect();
    let mut refs: Vec<(&str, u64)> = all.iter().map(|p| (p.as_str(), 1)).collect();
    refs.push(("/plans/7", 4));
    let t = templates(&refs);
    assert_eq!(names(&t), ["/plans/by-slug/{slug}", "/plans/{planId}"]);
    assert_eq!(t["/plans/by-slug/{slug}"], 12);
}

#[test]
fn resources_seen_often_are_not_collapsed() {
    let resources = [
        "users",
        "orders",
        "carts",
        "invoices",
        "payments",
        "shipments",
        "reviews",
        "teams",
        "tasks",
        "files",
        "devices",
        "alerts",
        "tags",
        "roles",
    ];
    let owned: Vec<String> = resources.iter().map(|r| format!("/api/v1/{r}")).collect();
    let refs: Vec<(&str, u64)> = owned.iter().map(|p| (p.as_str(), 50)).collect();
    let t = templates(&refs);
    assert_eq!(t.len(), resources.len());
}

#[test]
fn kinds_at_one_position_stay_apart_with_distinct_names() {
    let t = templates(&[
        ("/files/12", 1),
        ("/files/6ba7b810-9dad-11d1-80b4-00c04fd430c8", 1),
    ]);
    assert_eq!(names(&t), ["/files/{fileId}", "/files/{fileUuid}"]);
}

#[test]
fn root_and_trailing_slash() {
    let t = templates(&[("/", 2), ("/health", 1), ("/health/", 1)]);
    assert_eq!(names(&t), ["/", "/health", "/health/"]);
}

#[test]
fn evidence_names_the_rule() {
    let owned: Vec<String> = (0..15).map(|i| format!("/tags/word{i}a/x/5")).collect();
    let refs: Vec<(&str, u64)> = owned.iter().map(|p| (p.as_str(), 1)).collect();
    let keys: Vec<ObservationKey> = refs
        .iter()
        .map(|(p, _)| ObservationKey {
            service: "s".into(),
            method: "GET".into(),
            path: path_key(p).0,
        })
        .collect();
    let obs: Vec<(&ObservationKey, u64)> = keys.iter().map(|k| (k, 1)).collect();
    let t = template_observations(&obs, &|_| None);
    assert_eq!(t.len(), 1);
    let segs = &t[0].segments;
    assert_eq!(t[0].render(), "/tags/{tagId}/x/{xId}");
    assert_eq!(segs[0].rule, Rule::Literal);
    assert_eq!(segs[1].rule, Rule::Statistics);
    assert_eq!(segs[1].collapsed_values, Some(15));
    assert!(segs[1].confidence() > 0.9);
    assert_eq!(segs[3].rule, Rule::Form);
    assert_eq!(segs[3].kind, Some(ParamKind::Integer));
    assert_eq!(t[0].members.len(), 15);
}
