//! (being written)

use axum::Router;
use std::sync::Arc;

use crate::app::App;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
}
