//! Profiles and preferences: created on first update, then patched.

mod common;

use common::*;
use core_auth::Auth;
use core_auth::entity::{user, user_preference, user_profile};
use core_auth::profile::{PreferencesUpdate, ProfileUpdate, Theme};
use kernel::actor::Actor;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;

async fn profile_of(db: &impl ConnectionTrait, user_id: Uuid) -> user_profile::Model {
    user_profile::Entity::find()
        .filter(user_profile::Column::UserId.eq(user_id))
        .one(db)
        .await
        .unwrap()
        .expect("profile exists")
}

/// Runs the create-then-patch sequence against `ada`'s profile, whether or not
/// a profile row exists yet.
async fn profile_updates_create_then_patch(auth: &Auth, db: &impl ConnectionTrait, ada: &Actor) {
    let updated = auth
        .update_profile(
            db,
            ada,
            ProfileUpdate {
                name: Some(Some("Ada Lovelace".into())),
                company_name: Some(Some("Analytical Engines".into())),
                industry: Some(Some("Computing".into())),
                goals: Some(Some(json!(["grow", "automate"]))),
                ..Default::default()
            },
        )
        .await
        .expect("first update");
    assert_eq!(updated.name.as_deref(), Some("Ada Lovelace"));
    let created = profile_of(db, ada.user_id).await;
    assert_eq!(created.company_name.as_deref(), Some("Analytical Engines"));
    assert_eq!(created.industry.as_deref(), Some("Computing"));
    assert_eq!(created.goals, Some(json!(["grow", "automate"])));
    assert_eq!(created.website, None);

    // Omitted fields are kept, `Some(None)` clears.
    let updated = auth
        .update_profile(
            db,
            ada,
            ProfileUpdate {
                industry: Some(None),
                website: Some(Some("https://engines.example".into())),
                ..Default::default()
            },
        )
        .await
        .expect("second update");
    assert_eq!(updated.name.as_deref(), Some("Ada Lovelace"));
    let patched = profile_of(db, ada.user_id).await;
    assert_eq!(patched.id, created.id);
    assert_eq!(patched.company_name.as_deref(), Some("Analytical Engines"));
    assert_eq!(patched.industry, None);
    assert_eq!(patched.website.as_deref(), Some("https://engines.example"));
    assert_eq!(patched.goals, Some(json!(["grow", "automate"])));
    assert_eq!(count::<user_profile::Entity>(db).await, 1);

    let updated = auth
        .update_profile(
            db,
            ada,
            ProfileUpdate {
                name: Some(None),
                goals: Some(None),
                ..Default::default()
            },
        )
        .await
        .expect("third update");
    assert_eq!(updated.name, None);
    let stored = user::Entity::find_by_id(ada.user_id)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.name, None);
    let cleared = profile_of(db, ada.user_id).await;
    assert_eq!(cleared.goals, None);
    assert_eq!(cleared.company_name.as_deref(), Some("Analytical Engines"));
    assert_eq!(cleared.website.as_deref(), Some("https://engines.example"));
}

#[tokio::test]
async fn update_profile_creates_then_patches() {
    let (t, auth, _clock) = setup().await;
    let session = user(&auth, &t.db, "ada@x.com").await;
    let ada = actor(&auth, &t.db, &session).await;
    assert_eq!(count::<user_profile::Entity>(&t.db).await, 0);

    profile_updates_create_then_patch(&auth, &t.db, &ada).await;
}

/// Runs the preference updates against `ada`, whether or not a row exists yet.
async fn preference_updates(auth: &Auth, db: &impl ConnectionTrait, ada: &Actor) {
    let prefs = auth
        .update_preferences(db, ada, PreferencesUpdate::default())
        .await
        .expect("first update");
    assert_eq!(prefs.theme, Theme::Light.as_str());
    assert_eq!(prefs.user_id, ada.user_id);
    assert_eq!(prefs.notifications, None);

    let prefs = auth
        .update_preferences(
            db,
            ada,
            PreferencesUpdate {
                theme: Some(Theme::Dark),
                notifications: Some(Some(json!({ "email": true }))),
                ..Default::default()
            },
        )
        .await
        .expect("second update");
    assert_eq!(prefs.theme, "dark");
    assert_eq!(prefs.notifications, Some(json!({ "email": true })));

    let prefs = auth
        .update_preferences(
            db,
            ada,
            PreferencesUpdate {
                notifications: Some(None),
                default_browser_config: Some(Some(json!({ "headless": false }))),
                ..Default::default()
            },
        )
        .await
        .expect("third update");
    assert_eq!(prefs.theme, "dark", "omitted theme is kept");
    assert_eq!(prefs.notifications, None);
    assert_eq!(
        prefs.default_browser_config,
        Some(json!({ "headless": false }))
    );

    let stored = user_preference::Entity::find()
        .filter(user_preference::Column::UserId.eq(ada.user_id))
        .all(db)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0], prefs);
}

#[tokio::test]
async fn preferences_default_to_light_theme_and_update() {
    let (t, auth, _clock) = setup().await;
    let session = user(&auth, &t.db, "ada@x.com").await;
    let ada = actor(&auth, &t.db, &session).await;
    assert_eq!(count::<user_preference::Entity>(&t.db).await, 0);

    preference_updates(&auth, &t.db, &ada).await;
}
