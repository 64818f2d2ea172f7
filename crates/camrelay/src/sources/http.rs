//! (being written)

use crate::app::SourceContext;
use crate::hub::SourceFactory;

/// Schemes served by this module, with their factories.
pub fn schemes(_ctx: &SourceContext) -> Vec<(&'static str, SourceFactory)> {
    Vec::new()
}
