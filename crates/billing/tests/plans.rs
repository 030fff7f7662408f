//! Plans, quotes and subscriptions: each test names the rule it checks.

use billing::entity::subscription_tier;
use kernel::testing::TestDb;
use migration::{Migrator, MigratorTrait};
use sea_orm::{EntityTrait, QueryOrder};

#[tokio::test]
async fn migration_seeds_the_four_default_tiers_and_rolls_back_cleanly() {
    let t = TestDb::new::<Migrator>().await;
    let tiers = subscription_tier::Entity::find()
        .order_by_asc(subscription_tier::Column::SortOrder)
        .all(&t.db)
        .await
        .unwrap();
    let got: Vec<(&str, i64, i32, i32)> = tiers
        .iter()
        .map(|t| {
            (
                t.slug.as_str(),
                t.monthly_price_cents,
                t.max_agents,
                t.monthly_execution_limit,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("starter", 99_700, 5, 200),
            ("growth", 169_700, 10, 500),
            ("professional", 319_700, 25, 1_250),
            ("enterprise", 499_700, 50, 3_000),
        ]
    );
    assert!(tiers.iter().all(|t| t.weekly_premium_percent == 15
        && t.six_month_discount_percent == 5
        && t.annual_discount_percent == 10));
    Migrator::down(&t.db, Some(1)).await.unwrap();
    assert!(subscription_tier::Entity::find().all(&t.db).await.is_err());
    Migrator::up(&t.db, None).await.unwrap();
    assert_eq!(
        subscription_tier::Entity::find()
            .all(&t.db)
            .await
            .unwrap()
            .len(),
        4
    );
}
