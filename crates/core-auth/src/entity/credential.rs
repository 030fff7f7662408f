//! `credentials`: secrets sealed under the vault's key ring (seed 004 plus the key version).

use sea_orm::entity::prelude::*;

/// A stored credential. `encrypted_data`, `iv` and `auth_tag` together are the
/// sealed secret; they open only for this owner and this row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credentials")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub service: String,
    #[sea_orm(column_name = "type")]
    pub kind: String,
    #[sea_orm(column_type = "Text")]
    pub encrypted_data: String,
    pub iv: String,
    pub auth_tag: String,
    pub key_version: i32,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub metadata: Option<Json>,
    pub last_used_at: Option<DateTimeUtc>,
    pub use_count: i32,
    pub deleted_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
