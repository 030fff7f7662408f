//! DataLoaders: every edge is one batched statement per request, whatever the row count.

use crate::entity::{user_preference, user_profile};
use crate::profile::{preferences_of, profiles_of};
use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{ErrorExtensions, Request};
use sea_orm::DatabaseConnection;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// A loader failure, shareable between the fields that waited on the batch.
#[derive(Clone, Debug)]
pub struct LoadError(Arc<kernel::Error>);

impl LoadError {
    /// The GraphQL form, with the API code.
    pub fn to_gql(&self) -> async_graphql::Error {
        self.0.extend()
    }
}

impl From<crate::AuthError> for LoadError {
    fn from(e: crate::AuthError) -> Self {
        Self(Arc::new(e.into()))
    }
}

/// Loads profiles by user id.
pub struct ProfileLoader(pub DatabaseConnection);

impl Loader<Uuid> for ProfileLoader {
    type Value = user_profile::Model;
    type Error = LoadError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(profiles_of(&self.0, keys).await?)
    }
}

/// Loads preferences by user id.
pub struct PreferencesLoader(pub DatabaseConnection);

impl Loader<Uuid> for PreferencesLoader {
    type Value = user_preference::Model;
    type Error = LoadError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(preferences_of(&self.0, keys).await?)
    }
}

/// Adds this domain's loaders to one request; they cache for that request only.
pub fn register_loaders(request: Request, db: &DatabaseConnection) -> Request {
    let request = request
        .data(DataLoader::new(ProfileLoader(db.clone()), tokio::spawn))
        .data(DataLoader::new(PreferencesLoader(db.clone()), tokio::spawn));
    super::org_types::register_org_loaders(request, db)
}
