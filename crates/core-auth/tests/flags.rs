//! Feature flags and system config: stable rollout, whitelist, switches,
//! bounds, admin-only writes and their audit records.

mod common;

use common::*;
use core_auth::entity::{audit_log, feature_flag, security_audit_log, system_config};
use core_auth::flags::{FlagName, FlagUpdate, NewFlag, bucket, is_on};
use core_auth::system_config::{SetConfig, ValueType};
use kernel::error::Code;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::json;
use uuid::Uuid;

fn flag(name: &str, enabled: bool, rollout: i32, whitelist: &[Uuid]) -> feature_flag::Model {
    let now = chrono::Utc::now();
    feature_flag::Model {
        id: Uuid::now_v7(),
        name: name.into(),
        description: None,
        enabled,
        rollout_percentage: rollout,
        user_whitelist: json!(whitelist.iter().map(Uuid::to_string).collect::<Vec<_>>()),
        metadata: None,
        created_at: now,
        updated_at: now,
    }
}

#[test]
fn rollout_bucket_matches_a_fixed_sha256_vector() {
    // sha256("beta:00000000-0000-0000-0000-000000000001")[..8] as big-endian u64
    // = 9006026852339818338, which is 38 mod 100.
    assert_eq!(bucket("beta", Uuid::from_u128(1)), 38);
    let id = Uuid::parse_str("0190c3a2-7b4e-7c00-8000-000000000042").unwrap();
    assert_eq!(bucket("new-checkout", id), 35);
}

#[test]
fn the_same_user_always_gets_the_same_answer() {
    let f = flag("beta", true, 50, &[]);
    for i in 0..200u128 {
        let user = Uuid::from_u128(i);
        let first = is_on(&f, user);
        assert!((0..5).all(|_| is_on(&f, user) == first));
        assert_eq!(first, bucket("beta", user) < 50);
    }
}

#[test]
fn rollout_distribution_roughly_matches_the_percentage() {
    for pct in [10, 30, 75] {
        let f = flag("dist", true, pct, &[]);
        let on = (0..1000u128)
            .filter(|i| is_on(&f, Uuid::from_u128(i * 7919 + 13)))
            .count() as i32;
        assert!((on - pct * 10).abs() <= 50, "{pct}%: {on} of 1000");
    }
    let all = flag("dist", true, 100, &[]);
    let none = flag("dist", true, 0, &[]);
    assert!((0..1000u128).all(|i| is_on(&all, Uuid::from_u128(i))));
    assert!((0..1000u128).all(|i| !is_on(&none, Uuid::from_u128(i))));
}

#[test]
fn whitelisted_users_get_an_enabled_flag_even_at_zero_percent() {
    let ada = Uuid::now_v7();
    let f = flag("beta", true, 0, &[ada]);
    assert!(is_on(&f, ada));
    assert!(!is_on(&f, Uuid::now_v7()));
}

#[test]
fn disabled_flag_is_off_for_everyone_even_whitelisted_users() {
    let ada = Uuid::now_v7();
    let f = flag("beta", false, 100, &[ada]);
    assert!(!is_on(&f, ada));
    assert!((0..1000u128).all(|i| !is_on(&f, Uuid::from_u128(i))));
}

#[test]
fn rollout_outside_0_to_100_is_bad_user_input() {
    for bad in [-1, 101, i32::MAX] {
        let err = NewFlag::parse("beta", None, true, bad, vec![]).unwrap_err();
        assert!(
            matches!(err, kernel::Error::BadInput { ref field, .. } if field == "rolloutPercentage")
        );
        let err = FlagUpdate::parse(None, None, Some(bad), None).unwrap_err();
        assert_eq!(err.code(), Code::BadUserInput);
    }
    assert!(NewFlag::parse("beta", None, true, 100, vec![]).is_ok());
}

#[test]
fn flag_names_are_lowercase_digits_and_separators() {
    for bad in ["Beta", "new ui", "", "-x", "a/b"] {
        let err = FlagName::parse("name", bad).unwrap_err();
        assert!(
            matches!(err, kernel::Error::BadInput { ref field, .. } if field == "name"),
            "{bad}"
        );
    }
    assert!(FlagName::parse("name", "checkout.v2-beta_1").is_ok());
}

#[tokio::test]
async fn feature_flags_query_lists_the_flags_on_for_the_caller() {
    let (t, auth, _clock) = setup().await;
    let (_, admin) = member(&auth, &t.db, "a@x.com", "admin").await;
    let (_, ada) = member(&auth, &t.db, "ada@x.com", "user").await;
    let c = cap(&admin);
    let mk = |name: &str, enabled, pct, wl: Vec<Uuid>| {
        NewFlag::parse(name, None, enabled, pct, wl).unwrap()
    };
    auth.create_flag(&t.db, &c, mk("everyone", true, 100, vec![]))
        .await
        .unwrap();
    auth.create_flag(&t.db, &c, mk("nobody", true, 0, vec![]))
        .await
        .unwrap();
    auth.create_flag(&t.db, &c, mk("ada-only", true, 0, vec![ada.user_id]))
        .await
        .unwrap();
    auth.create_flag(&t.db, &c, mk("switched-off", false, 100, vec![ada.user_id]))
        .await
        .unwrap();
    let s = schema(&t.db, &auth);

    let body = run_gql(&s, Some(&ada), "{ featureFlags }").await;
    assert_eq!(
        body["data"]["featureFlags"],
        json!(["ada-only", "everyone"]),
        "{body}"
    );
    let body = run_gql(&s, Some(&admin), "{ featureFlags }").await;
    assert_eq!(body["data"]["featureFlags"], json!(["everyone"]));
    assert_eq!(
        gql_code(&run_gql(&s, None, "{ featureFlags }").await),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn flag_crud_is_admin_only_and_audited() {
    let (t, auth, _clock) = setup().await;
    let (_, admin) = member(&auth, &t.db, "a@x.com", "admin").await;
    let (_, ada) = member(&auth, &t.db, "ada@x.com", "user").await;
    let s = schema(&t.db, &auth);

    let create = r#"mutation { createFeatureFlag(input: {name: "beta", enabled: true, rolloutPercentage: 25}) { name enabled rolloutPercentage userWhitelist } }"#;
    assert_eq!(
        gql_code(&run_gql(&s, Some(&ada), create).await),
        "FORBIDDEN"
    );
    assert_eq!(count::<feature_flag::Entity>(&t.db).await, 0);
    let body = run_gql(&s, Some(&admin), create).await;
    assert_eq!(
        body["data"]["createFeatureFlag"]["rolloutPercentage"], 25,
        "{body}"
    );
    assert_eq!(
        gql_code(&run_gql(&s, Some(&admin), create).await),
        "CONFLICT"
    );

    let update = format!(
        r#"mutation {{ updateFeatureFlag(input: {{name: "beta", rolloutPercentage: 60, userWhitelist: ["{}"]}}) {{ rolloutPercentage enabled userWhitelist }} }}"#,
        ada.user_id
    );
    let body = run_gql(&s, Some(&admin), &update).await;
    let updated = &body["data"]["updateFeatureFlag"];
    assert_eq!(updated["rolloutPercentage"], 60, "{body}");
    assert_eq!(updated["enabled"], true, "omitted fields are kept");
    assert_eq!(updated["userWhitelist"], json!([ada.user_id.to_string()]));
    let too_far =
        r#"mutation { updateFeatureFlag(input: {name: "beta", rolloutPercentage: 101}) { name } }"#;
    let body = run_gql(&s, Some(&admin), too_far).await;
    assert_eq!(gql_code(&body), "BAD_USER_INPUT");
    assert_eq!(
        body["errors"][0]["extensions"]["field"],
        "rolloutPercentage"
    );
    let bad_name = r#"mutation { createFeatureFlag(input: {name: "Bad Name"}) { name } }"#;
    assert_eq!(
        gql_code(&run_gql(&s, Some(&admin), bad_name).await),
        "BAD_USER_INPUT"
    );

    let body = run_gql(
        &s,
        Some(&admin),
        "{ admin { featureFlags { nodes { name rolloutPercentage } } } }",
    )
    .await;
    assert_eq!(
        body["data"]["admin"]["featureFlags"]["nodes"][0]["rolloutPercentage"],
        60
    );

    let delete = r#"mutation { deleteFeatureFlag(name: "beta") }"#;
    assert_eq!(
        run_gql(&s, Some(&admin), delete).await["data"]["deleteFeatureFlag"],
        true
    );
    assert_eq!(
        gql_code(&run_gql(&s, Some(&admin), delete).await),
        "NOT_FOUND"
    );
    assert_eq!(count::<feature_flag::Entity>(&t.db).await, 0);

    let audited: Vec<(String, Option<String>)> = audit_log::Entity::find()
        .filter(audit_log::Column::EntityType.eq("feature_flag"))
        .order_by_asc(audit_log::Column::Id)
        .all(&t.db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.action, r.entity_id))
        .collect();
    let beta = Some("beta".to_owned());
    assert_eq!(
        audited,
        [
            ("createFeatureFlag".to_owned(), beta.clone()),
            ("updateFeatureFlag".to_owned(), beta.clone()),
            ("deleteFeatureFlag".to_owned(), beta.clone()),
        ]
    );
    let security = security_audit_log::Entity::find()
        .filter(security_audit_log::Column::ResourceType.eq("feature_flag"))
        .all(&t.db)
        .await
        .unwrap();
    assert_eq!(security.len(), 3);
    assert!(security.iter().all(|r| r.user_id == Some(admin.user_id)));
}

#[tokio::test]
async fn updating_an_unknown_flag_is_not_found() {
    let (t, auth, _clock) = setup().await;
    let (_, admin) = member(&auth, &t.db, "a@x.com", "admin").await;
    let name = FlagName::parse("name", "ghost").unwrap();
    let err = auth
        .update_flag(&t.db, &cap(&admin), &name, FlagUpdate::default())
        .await
        .refused();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn system_config_values_must_match_their_declared_type() {
    let (t, auth, _clock) = setup().await;
    let (_, admin) = member(&auth, &t.db, "a@x.com", "admin").await;
    let s = schema(&t.db, &auth);
    let cases = [
        (r#""10""#, "NUMBER"),
        ("10", "STRING"),
        (r#""yes""#, "BOOLEAN"),
        ("3", "JSON"),
    ];
    for (value, ty) in cases {
        let doc = format!(
            r#"mutation {{ setSystemConfig(input: {{key: "k", value: {value}, valueType: {ty}}}) {{ key }} }}"#
        );
        let body = run_gql(&s, Some(&admin), &doc).await;
        assert_eq!(gql_code(&body), "BAD_USER_INPUT", "{doc}");
        assert_eq!(body["errors"][0]["extensions"]["field"], "value");
    }
    assert_eq!(count::<system_config::Entity>(&t.db).await, 0);
    let err = SetConfig::parse("Bad Key", json!(1), ValueType::Number, None).unwrap_err();
    assert!(matches!(err, kernel::Error::BadInput { ref field, .. } if field == "key"));

    let ok = r#"mutation { setSystemConfig(input: {key: "signup.max_per_day", value: 500, valueType: NUMBER, description: "cap"}) { key value valueType updatedBy } }"#;
    let body = run_gql(&s, Some(&admin), ok).await;
    let entry = &body["data"]["setSystemConfig"];
    assert_eq!(entry["value"], 500, "{body}");
    assert_eq!(entry["valueType"], "NUMBER");
    assert_eq!(entry["updatedBy"], admin.user_id.to_string());
    assert_eq!(
        auth.config_value(&t.db, "signup.max_per_day")
            .await
            .unwrap(),
        Some(json!(500))
    );
}

#[tokio::test]
async fn system_config_writes_are_admin_only_and_audited() {
    let (t, auth, _clock) = setup().await;
    let (_, admin) = member(&auth, &t.db, "a@x.com", "admin").await;
    let (_, ada) = member(&auth, &t.db, "ada@x.com", "user").await;
    let s = schema(&t.db, &auth);
    let set = |v: &str| {
        format!(
            r#"mutation {{ setSystemConfig(input: {{key: "maintenance", value: {v}, valueType: BOOLEAN}}) {{ value }} }}"#
        )
    };
    assert_eq!(
        gql_code(&run_gql(&s, Some(&ada), &set("true")).await),
        "FORBIDDEN"
    );
    let read = "{ admin { systemConfig { nodes { key value } } } }";
    assert_eq!(gql_code(&run_gql(&s, Some(&ada), read).await), "FORBIDDEN");

    run_gql(&s, Some(&admin), &set("false")).await;
    let body = run_gql(&s, Some(&admin), &set("true")).await;
    assert_eq!(body["data"]["setSystemConfig"]["value"], true, "{body}");
    assert_eq!(
        count::<system_config::Entity>(&t.db).await,
        1,
        "the second write replaces the first"
    );
    let body = run_gql(&s, Some(&admin), read).await;
    assert_eq!(
        body["data"]["admin"]["systemConfig"]["nodes"][0]["value"],
        true
    );

    let delete = r#"mutation { deleteSystemConfig(key: "maintenance") }"#;
    assert_eq!(
        gql_code(&run_gql(&s, Some(&ada), delete).await),
        "FORBIDDEN"
    );
    assert_eq!(
        run_gql(&s, Some(&admin), delete).await["data"]["deleteSystemConfig"],
        true
    );
    assert_eq!(
        gql_code(&run_gql(&s, Some(&admin), delete).await),
        "NOT_FOUND"
    );

    let audited = audit_log::Entity::find()
        .filter(audit_log::Column::EntityType.eq("system_config"))
        .order_by_asc(audit_log::Column::Id)
        .all(&t.db)
        .await
        .unwrap();
    let actions: Vec<_> = audited.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        ["setSystemConfig", "setSystemConfig", "deleteSystemConfig"]
    );
    assert_eq!(audited[1].old_values.as_ref().unwrap()["value"], false);
    assert_eq!(audited[1].new_values.as_ref().unwrap()["value"], true);
    assert!(audited.iter().all(|r| r.user_id == Some(admin.user_id)));
}

#[tokio::test]
async fn a_setting_named_like_a_secret_is_redacted_in_audit_rows() {
    let (t, auth, _clock) = setup().await;
    let (_, admin) = member(&auth, &t.db, "a@x.com", "admin").await;
    let s = schema(&t.db, &auth);
    for v in ["first-hunter2", "second-hunter2"] {
        let body = run_gql(
            &s,
            Some(&admin),
            &format!(
                r#"mutation {{ setSystemConfig(input: {{key: "smtp.password", value: "{v}", valueType: STRING}}) {{ value }} }}"#
            ),
        )
        .await;
        assert_eq!(body["data"]["setSystemConfig"]["value"], v, "{body}");
    }
    let audited = audit_log::Entity::find()
        .filter(audit_log::Column::EntityType.eq("system_config"))
        .all(&t.db)
        .await
        .unwrap();
    assert_eq!(audited.len(), 2);
    for row in &audited {
        let text = format!("{row:?}");
        assert!(!text.contains("hunter2"), "secret in audit row: {text}");
    }
    assert_eq!(
        audited[1].new_values.as_ref().unwrap()["value"],
        "[REDACTED]"
    );
}
