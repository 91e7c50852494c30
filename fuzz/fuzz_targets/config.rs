//! Plugin configuration as APISIX hands it over (JSON): `config::check` and
//! `PluginConfig::from_value` must never panic, and must agree with each other.
#![no_main]

use aws_lambda_native::config::{check, PluginConfig};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(conf) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let mut checked = conf.clone();
    match check(&mut checked) {
        Err(message) => {
            // A refused configuration is left as it was, and access refuses it the same way.
            assert_eq!(checked, conf, "check changed a configuration it refused");
            assert_eq!(PluginConfig::from_value(&conf).err(), Some(message));
        }
        Ok(injected) => {
            for default in &injected {
                let mut at = &checked;
                for key in &default.path {
                    at = at.get(key.as_str()).expect("injected path missing");
                }
                assert_eq!(
                    at, &default.value,
                    "injected value not in the configuration"
                );
            }
            // Checking again changes nothing: APISIX checks stored configurations again.
            let mut again = checked.clone();
            assert_eq!(check(&mut again), Ok(Vec::new()), "check is not idempotent");
            assert_eq!(again, checked);

            let built = PluginConfig::from_value(&conf);
            // A secret reference (`$env://`, `$secret://`) passes check unresolved and
            // only a resolved value can be used; everything else check accepts must build.
            if !has_secret_ref(&conf) {
                let cfg = built.unwrap_or_else(|e| panic!("check accepted, from_value: {e}"));
                assert_eq!(PluginConfig::from_value(&checked).as_ref(), Ok(&cfg));
                // The Debug output (it reaches logs) never shows a secret.
                let shown = format!("{:?}", with_sentinel_secrets(cfg));
                assert!(!shown.contains(SENTINEL), "secret in Debug output: {shown}");
            }
        }
    }
});

fn has_secret_ref(v: &Value) -> bool {
    match v {
        Value::String(s) => {
            s.starts_with("$secret://")
                || s.get(..7)
                    .is_some_and(|p| p.eq_ignore_ascii_case("$env://"))
        }
        Value::Array(list) => list.iter().any(has_secret_ref),
        Value::Object(map) => map.values().any(has_secret_ref),
        _ => false,
    }
}

const SENTINEL: &str = "S3NTINEL-SECRET";

/// The configuration with every secret replaced by [`SENTINEL`], which the fuzzed
/// fields are most unlikely to contain.
fn with_sentinel_secrets(mut cfg: PluginConfig) -> PluginConfig {
    if cfg.apikey.is_some() {
        cfg.apikey = Some(SENTINEL.to_owned());
    }
    if let Some((_, secret, token)) = cfg.iam.as_mut().and_then(|iam| iam.keys.as_mut()) {
        *secret = SENTINEL.to_owned();
        if token.is_some() {
            *token = Some(SENTINEL.to_owned());
        }
    }
    cfg
}
