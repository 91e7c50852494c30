//! mlua bindings for the setup-level calls: `require("aws_lambda_native")`.
//!
//! Configuration crosses here as Lua tables (convenient, and rare: once per route
//! version). The per-request path uses the C ABI in `ffi` instead, which costs a
//! fraction of a table-in/table-out mlua call (DESIGN.md).

use mlua::{
    IntoLuaMulti, LightUserData, Lua, LuaSerdeExt, MultiValue, Result as LuaResult, Table, Value,
};

use crate::config::{self, PluginConfig};
use crate::ffi::{AwslRoute, HEADER};
use crate::invoke::Route;

#[mlua::lua_module(name = "aws_lambda_native")]
fn module(lua: &Lua) -> LuaResult<Table> {
    let m = lua.create_table()?;
    m.set("version", crate::VERSION)?;
    m.set("cdef", cdef(HEADER))?;
    m.set(
        "schema",
        lua.create_function(|lua, ()| lua.to_value(config::schema()))?,
    )?;
    m.set("check_schema", lua.create_function(check_schema)?)?;
    m.set("route_new", lua.create_function(route_new)?)?;
    m.set(
        "live_routes",
        lua.create_function(|_, ()| Ok(AwslRoute::live()))?,
    )?;
    m.set(
        "take_log",
        lua.create_function(|_, ()| {
            Ok(crate::bridge::current().map_or_else(Vec::new, |w| w.providers().take_log()))
        })?,
    )?;
    m.set(
        "runtime_restarts",
        lua.create_function(|_, ()| Ok(crate::stats::WORKER.runtime_restarts()))?,
    )?;
    // For the recovery tests only: refused unless AWSL_TEST_HOOKS=1 (bridge).
    m.set(
        "test_kill_runtime",
        lua.create_function(|lua, ()| {
            let result = crate::bridge::current()
                .ok_or_else(|| "no runtime in this process".to_string())
                .and_then(|w| w.kill_for_test());
            match result {
                Ok(()) => true.into_lua_multi(lua),
                Err(e) => (Value::Nil, e).into_lua_multi(lua),
            }
        })?,
    )?;
    m.set(
        "credential_providers",
        lua.create_function(|_, ()| {
            Ok(crate::bridge::current().map_or(0, |w| w.providers().live()))
        })?,
    )?;
    m.set(
        "stats_snapshot",
        lua.create_function(|_, ()| {
            serde_json::to_string(&crate::bridge::stats()).map_err(mlua::Error::external)
        })?,
    )?;
    m.set("stats_report", lua.create_function(stats_report)?)?;
    m.set(
        "stats_refused",
        lua.create_function(|_, (status, too_large): (u16, bool)| {
            // A request the Lua side answered without the runtime.
            crate::stats::WORKER.answered(status);
            if too_large {
                crate::stats::WORKER.failed(crate::stats::Failure::TooLarge);
            }
            Ok(())
        })?,
    )?;
    m.set(
        "tickets",
        lua.create_function(|_, ()| {
            Ok(crate::bridge::current().map_or(0, |w| w.tickets().lock().len()))
        })?,
    )?;
    Ok(m)
}

/// `stats_report(snapshots, format, all_workers)`: workers' snapshots (JSON strings
/// from `stats_snapshot`) merged, marked as covering all workers or not, as a Lua table (`"table"`), JSON text (`"json"`) or
/// Prometheus text (`"prometheus"`); and the messages of snapshots that could not be
/// read (a list, maybe empty).
fn stats_report(
    lua: &Lua,
    (snapshots, format, all_workers): (Vec<mlua::String>, String, bool),
) -> LuaResult<(Value, Vec<String>)> {
    let texts: Vec<_> = snapshots
        .iter()
        .map(|s| s.to_str())
        .collect::<Result<_, _>>()?;
    let (mut total, errors) = crate::stats::merge(texts.iter().map(|s| &**s));
    total.all_workers = Some(all_workers);
    let text = match format.as_str() {
        "table" => return Ok((lua.to_value(&total)?, errors)),
        "json" => serde_json::to_string(&total).map_err(mlua::Error::external)?,
        "prometheus" => total.prometheus(),
        other => {
            return Err(mlua::Error::external(format!(
                "unknown stats format {other:?}: json or prometheus"
            )))
        }
    };
    Ok((Value::String(lua.create_string(text)?), errors))
}

/// `check_schema(conf[, meta_schema])`: validates, injects the defaults into `conf`
/// itself, and returns `true` or `false, message` (APISIX's contract). `meta_schema`
/// is the `_meta` subschema APISIX injected into `plugin.schema.properties`; when given,
/// `conf._meta` is checked against it. A third value, a warning, says why `_meta` was
/// left unchecked when that subschema cannot be interpreted.
fn check_schema(
    lua: &Lua,
    (conf, meta_schema): (Value, Option<Table>),
) -> LuaResult<(bool, Option<String>, Option<String>)> {
    let Value::Table(table) = &conf else {
        return Ok((false, Some(wrong_type(&conf)), None));
    };
    let mut value = match to_json(lua, conf.clone())? {
        Ok(v) => v,
        Err(message) => return Ok((false, Some(message), None)),
    };
    let mut warning = None;
    let meta = match meta_schema {
        Some(t) => match lua
            .from_value::<serde_json::Value>(Value::Table(t))
            .map_err(|e| e.to_string())
            .and_then(config::MetaSchema::parse)
        {
            Ok(meta) => Some(meta),
            Err(why) => {
                warning = Some(format!("_meta left unchecked: its injected schema: {why}"));
                None
            }
        },
        None => None,
    };
    match config::check_with_meta(&mut value, meta.as_ref()) {
        Ok(injected) => {
            for default in injected {
                set_path(lua, table, &default.path, &default.value)?;
            }
            Ok((true, None, warning))
        }
        Err(message) => Ok((false, Some(message), warning)),
    }
}

/// Tables nested deeper than this are refused before conversion: each level holds a
/// Lua reference while it is converted, and past a few thousand levels mlua runs out of
/// reference slots and raises instead of returning (APISIX's own tables are 3 deep).
const MAX_DEPTH: usize = 64;

/// Whether `table` nests more than `MAX_DEPTH` levels. `path` holds the tables above, so
/// that a cycle is left for `from_value` to report.
fn too_deep(table: &Table, path: &mut Vec<*const std::ffi::c_void>) -> LuaResult<bool> {
    if path.len() >= MAX_DEPTH {
        return Ok(true);
    }
    path.push(table.to_pointer());
    let mut deep = false;
    table.for_each(|_: Value, value: Value| {
        if let Value::Table(inner) = value {
            if !deep && !path.contains(&inner.to_pointer()) {
                deep = too_deep(&inner, path)?;
            }
        }
        Ok(())
    })?;
    path.pop();
    Ok(deep)
}

/// `conf` as JSON, or the message for a value JSON cannot hold.
fn to_json(lua: &Lua, conf: Value) -> LuaResult<Result<serde_json::Value, String>> {
    if let Value::Table(table) = &conf {
        if too_deep(table, &mut Vec::new())? {
            return Ok(Err(format!(
                "invalid configuration: tables nested more than {MAX_DEPTH} levels deep"
            )));
        }
    }
    Ok(lua
        .from_value(conf)
        .map_err(|e| format!("invalid configuration: {e}")))
}

fn wrong_type(conf: &Value) -> String {
    format!("wrong type: expected object, got {}", conf.type_name())
}

fn set_path(lua: &Lua, root: &Table, path: &[String], value: &serde_json::Value) -> LuaResult<()> {
    let Some((last, parents)) = path.split_last() else {
        return Ok(());
    };
    let mut table = root.clone();
    for key in parents {
        match table.raw_get::<Value>(key.as_str())? {
            Value::Table(t) => table = t,
            _ => return Ok(()),
        }
    }
    table.raw_set(last.as_str(), lua.to_value(value)?)
}

/// `route_new(conf)`: a route handle (light userdata, to be cast to `AwslRoute *` and
/// freed with `awsl_route_free`) and whether its requests must carry the request
/// context (`AwslRequest.context`, for an event); or `nil, message`. Validates `conf`
/// and injects its defaults into it as `check_schema` does, so that one crossing makes
/// a route from a configuration nobody checked (plain OpenResty).
fn route_new(lua: &Lua, conf: Value) -> LuaResult<MultiValue> {
    let fail = |m: String| (Value::Nil, m).into_lua_multi(lua);
    let Value::Table(table) = &conf else {
        return fail(wrong_type(&conf));
    };
    let table = table.clone();
    let mut value = match to_json(lua, conf)? {
        Ok(v) => v,
        Err(message) => return fail(message),
    };
    match config::check(&mut value) {
        Ok(injected) => {
            for default in injected {
                set_path(lua, &table, &default.path, &default.value)?;
            }
        }
        Err(e) => return fail(e),
    }
    let cfg = match PluginConfig::from_value(&value) {
        Ok(cfg) => cfg,
        Err(e) => return fail(e),
    };
    let needs_context = cfg
        .invoke
        .as_ref()
        .is_some_and(|i| i.payload_format != crate::config::PayloadFormat::Raw);
    let ptr = AwslRoute::into_raw(Route::new(cfg));
    (
        Value::LightUserData(LightUserData(ptr.cast())),
        Value::Nil,
        needs_context,
    )
        .into_lua_multi(lua)
}

/// The header as LuaJIT's `ffi.cdef` accepts it: no preprocessor lines, and the
/// `#define` constants as `static const int`, which LuaJIT exposes on the library
/// namespace.
pub fn cdef(header: &str) -> String {
    let mut out = String::with_capacity(header.len());
    for line in header.lines() {
        let trimmed = line.trim_start();
        if let Some(def) = trimmed.strip_prefix("#define ") {
            let mut parts = def.split_whitespace();
            if let (Some(name), Some(value), None) = (parts.next(), parts.next(), parts.next()) {
                out.push_str(&format!("static const int {name} = {value};\n"));
            }
            continue;
        }
        if trimmed.starts_with('#') {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn cdef_drops_preprocessor_and_keeps_constants() {
        let header = "#pragma once\n#include <stdint.h>\n#define AWSL_OK 0\n#define AWSL_AGAIN -2\nint awsl_x(void);\n";
        assert_eq!(
            super::cdef(header),
            "static const int AWSL_OK = 0;\nstatic const int AWSL_AGAIN = -2;\nint awsl_x(void);\n"
        );
    }
}
