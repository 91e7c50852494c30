//! The plugin schema: one JSON document, read two ways.
//!
//! `schema()` is the document as a `serde_json::Value`, which the Lua side turns into
//! `plugin.schema` for APISIX's Admin API. `root()` is the same text parsed into typed
//! nodes that the validator interprets. The typed parse rejects any keyword the validator
//! does not implement, so a constraint added to `schema.json` can never be silently ignored,
//! and it keeps `properties` in document order, which fixes the order in which the
//! validator reports failures.

use std::fmt;
use std::sync::OnceLock;

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The schema document, the single source of fields, types, bounds and defaults.
pub const SCHEMA_JSON: &str = include_str!("schema.json");

/// The schema as JSON, including `encrypt_fields`, parsed once.
pub fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    // The document is a compile-time constant; the unit tests prove it parses.
    SCHEMA.get_or_init(|| serde_json::from_str(SCHEMA_JSON).expect("schema.json is valid JSON"))
}

/// The schema as typed nodes, parsed once.
pub(crate) fn root() -> &'static Node {
    static ROOT: OnceLock<Node> = OnceLock::new();
    // Same document as `schema()`; the unit tests prove every keyword in it is understood.
    ROOT.get_or_init(|| serde_json::from_str(SCHEMA_JSON).expect("schema.json uses known keywords"))
}

/// The JSON types the schema uses; `name` is the spelling in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Type {
    Object,
    Array,
    String,
    Integer,
    Number,
    Boolean,
}

impl Type {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Type::Object => "object",
            Type::Array => "array",
            Type::String => "string",
            Type::Integer => "integer",
            Type::Number => "number",
            Type::Boolean => "boolean",
        }
    }
}

/// One (sub)schema: the subset of JSON Schema that the validator implements.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Node {
    #[serde(rename = "type")]
    pub ty: Option<Type>,
    #[serde(default)]
    pub properties: Properties,
    #[serde(default)]
    pub required: Vec<String>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    #[serde(rename = "minLength")]
    pub min_length: Option<u64>,
    #[serde(rename = "enum")]
    pub enumeration: Option<Vec<Value>>,
    pub items: Option<Box<Node>>,
    pub default: Option<Value>,
    /// Draft-4 property dependencies: when the key is present, so must its list be.
    #[serde(default)]
    pub dependencies: std::collections::BTreeMap<String, Vec<String>>,
    /// Only `false` (no keys beyond `properties`): the form APISIX's `_meta` schema uses.
    #[serde(rename = "additionalProperties")]
    pub additional_properties: Option<bool>,
    #[serde(rename = "oneOf")]
    pub one_of: Option<Vec<Node>>,
    // Annotations: allowed in the document, no effect on validation.
    #[serde(default, rename = "description")]
    _description: IgnoredAny,
    #[serde(default, rename = "encrypt_fields")]
    _encrypt_fields: IgnoredAny,
    #[serde(default, rename = "$comment")]
    _comment: IgnoredAny,
}

/// `properties` in document order (a JSON object would sort or hash the keys).
#[derive(Debug, Default)]
pub(crate) struct Properties(pub Vec<(String, Node)>);

impl<'de> Deserialize<'de> for Properties {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Ordered;

        impl<'de> Visitor<'de> for Ordered {
            type Value = Properties;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of property schemas")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Properties, A::Error> {
                let mut out: Vec<(String, Node)> = Vec::new();
                while let Some((name, node)) = map.next_entry::<String, Node>()? {
                    // serde_json's Value keeps the last duplicate; refuse the ambiguity.
                    if out.iter().any(|(seen, _)| *seen == name) {
                        return Err(de::Error::custom(format!("duplicate property {name}")));
                    }
                    out.push((name, node));
                }
                Ok(Properties(out))
            }
        }

        deserializer.deserialize_map(Ordered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_both_ways() {
        assert!(schema().is_object());
        let root = root();
        assert_eq!(root.ty, Some(Type::Object));
        let names: Vec<&str> = root.properties.0.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names[0], "function_uri", "checked first, see validate.rs");
    }

    #[test]
    fn encrypt_fields() {
        assert_eq!(
            schema()["encrypt_fields"],
            json!([
                "authorization.apikey",
                "authorization.iam.accesskey",
                "authorization.iam.secretkey",
                "authorization.iam.session_token",
                "proxy_url"
            ])
        );
    }

    /// APISIX's aws-lambda schema (generic-upstream.lua + aws-lambda.lua), field by field:
    /// ours must keep every type, bound and default.
    #[test]
    fn same_as_apisix() {
        let iam = "/authorization/properties/iam";
        let expect = json!({
            "/max_req_body_size": {"type": "integer", "minimum": 1, "default": 67108864},
            "/function_uri": {"type": "string"},
            "/authorization": {"type": "object"},
            "/authorization/properties/apikey": {"type": "string"},
            // APISIX requires both keys; here they still come as a pair, but may both be
            // left out to use the AWS credential chain (issue 3). sts_endpoint is ours.
            (iam): {"type": "object",
                    "dependencies": {"accesskey": ["secretkey"], "secretkey": ["accesskey"],
                                     "sts_endpoint": ["assume_role_arn"]}},
            (format!("{iam}/properties/accesskey")): {"type": "string"},
            (format!("{iam}/properties/secretkey")): {"type": "string"},
            (format!("{iam}/properties/aws_region")): {"type": "string", "default": "us-east-1"},
            (format!("{iam}/properties/service")): {"type": "string", "default": "execute-api"},
            "/timeout": {"type": "integer", "minimum": 100, "default": 3000},
            "/ssl_verify": {"type": "boolean", "default": true},
            "/keepalive": {"type": "boolean", "default": true},
            "/keepalive_timeout": {"type": "integer", "minimum": 1000, "default": 60000},
            "/keepalive_pool": {"type": "integer", "minimum": 1, "default": 5},
        });
        let p = &schema()["properties"];
        for (at, want) in expect.as_object().unwrap() {
            let got = p.pointer(at).unwrap_or_else(|| panic!("{at} missing"));
            for (k, v) in want.as_object().unwrap() {
                assert_eq!(got.get(k), Some(v), "{at}.{k}");
            }
            for bound in ["minimum", "maximum", "default"] {
                assert_eq!(
                    got.get(bound).is_some(),
                    want.get(bound).is_some(),
                    "{at}.{bound}"
                );
            }
        }
        // APISIX requires function_uri; here function_name may take its place, which
        // JSON Schema's `required` cannot say (validate.rs checks it, with APISIX's
        // message when both are missing).
        assert!(schema().get("required").is_none());
        assert!(schema().get("additionalProperties").is_none());
    }

    #[test]
    fn every_property_has_a_description() {
        fn walk(node: &Value, at: &str) {
            let Some(props) = node.get("properties").and_then(Value::as_object) else {
                return;
            };
            for (name, sub) in props {
                let at = format!("{at}.{name}");
                assert!(
                    sub["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "{at}"
                );
                walk(sub, &at);
                if let Some(items) = sub.get("items") {
                    assert!(items["description"].is_string(), "{at}[]");
                }
            }
        }
        walk(schema(), "conf");
    }
}
