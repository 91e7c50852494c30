//! Plugin configuration: the schema (one JSON document), its validation with APISIX's
//! messages and defaults, and the typed configuration the rest of the crate uses.
//!
//! The flow under APISIX: `plugin.schema` is `schema()` as a Lua table; `check_schema`
//! converts the conf table to JSON, calls [`check`], and writes each [`Injected`] default
//! back into the table; `access` builds a [`PluginConfig`] once per conf with
//! [`PluginConfig::from_value`].

mod endpoint;
mod function;
mod plugin;
mod proxy;
mod schema;
mod validate;

pub use endpoint::Endpoint;
pub use function::{
    default_endpoint, FunctionRef, InvocationType, InvokeConfig, InvokeMode, PayloadFormat,
};
pub use plugin::{Iam, PluginConfig};
pub use proxy::Proxy;
pub use schema::{schema, SCHEMA_JSON};
pub use validate::{check, check_with_meta, Injected, MetaSchema};
