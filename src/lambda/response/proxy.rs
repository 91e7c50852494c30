//! A proxy response read straight from the payload, without a `serde_json::Value` tree
//! or `aws_lambda_events`' owned structs, and as those structs read it: the tests
//! compare the two on every edge case.
//!
//! What the crate accepts is kept: `statusCode` an integer; `headers` and
//! `multiValueHeaders` null or an object whose values are a string (replacing earlier
//! values of the name), or an array of strings or of byte arrays (appended); a string
//! value must be visible ASCII (`HeaderValue::from_str`); `body` a string or null;
//! `isBase64Encoded` a boolean or null; in 2.0, `cookies` an array of strings, where
//! AWS (unlike the crate) lets it be left out. Other fields are ignored.

use std::borrow::Cow;
use std::fmt;

use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::config::PayloadFormat;

/// A payload's top level: an object's proxy-response fields, each as its raw JSON (a
/// repeated key's last value, as a JSON object keeps it), or any other JSON value.
pub(super) enum Top<'a> {
    Object(Fields<'a>),
    Other,
}

#[derive(Default)]
pub(super) struct Fields<'a> {
    pub status_code: Option<&'a RawValue>,
    headers: Option<&'a RawValue>,
    multi_value_headers: Option<&'a RawValue>,
    cookies: Option<&'a RawValue>,
    body: Option<&'a RawValue>,
    is_base64_encoded: Option<&'a RawValue>,
}

/// A proxy response's parts, before API Gateway's merge of them.
pub(super) struct Parsed<'a> {
    pub status: i64,
    pub headers: HeaderMap,
    pub multi: HeaderMap,
    pub cookies: Vec<Cow<'a, str>>,
    pub body: Option<Cow<'a, str>>,
    pub is_base64: bool,
}

impl<'a> Fields<'a> {
    /// Reads the fields as `format`'s response type does. The error is serde's.
    pub fn read(&self, format: PayloadFormat) -> Result<Parsed<'a>, serde_json::Error> {
        fn parse<'a, T: Deserialize<'a>>(raw: &'a RawValue) -> Result<T, serde_json::Error> {
            serde_json::from_str(raw.get())
        }
        let headers = |raw: Option<&'a RawValue>| -> Result<HeaderMap, serde_json::Error> {
            Ok(match raw {
                Some(raw) => parse::<Option<Headers>>(raw)?.map(|h| h.0),
                None => None,
            }
            .unwrap_or_default())
        };
        let status = match self.status_code {
            Some(raw) => parse(raw)?,
            None => return Err(de::Error::missing_field("statusCode")),
        };
        let mut multi = headers(self.multi_value_headers)?;
        let mut cookies = Vec::new();
        if format == PayloadFormat::ApigwV2 {
            // HTTP APIs and function URLs ignore `multiValueHeaders` in a 2.0 response
            // (the format has none); the crate still reads it.
            multi = HeaderMap::new();
            if let Some(raw) = self.cookies {
                cookies = parse(raw)?;
            }
        }
        Ok(Parsed {
            status,
            headers: headers(self.headers)?,
            multi,
            cookies,
            body: match self.body {
                Some(raw) => parse(raw)?,
                None => None,
            },
            is_base64: match self.is_base64_encoded {
                Some(raw) => parse::<Option<bool>>(raw)?.unwrap_or_default(),
                None => false,
            },
        })
    }
}

impl<'de> Deserialize<'de> for Top<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TopVisitor;

        impl<'de> Visitor<'de> for TopVisitor {
            type Value = Top<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top<'de>, A::Error> {
                let mut f = Fields::default();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let slot = match key.as_ref() {
                        "statusCode" => &mut f.status_code,
                        "headers" => &mut f.headers,
                        "multiValueHeaders" => &mut f.multi_value_headers,
                        "cookies" => &mut f.cookies,
                        "body" => &mut f.body,
                        "isBase64Encoded" => &mut f.is_base64_encoded,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = Some(map.next_value()?);
                }
                Ok(Top::Object(f))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Top::Other)
            }

            fn visit_bool<E>(self, _: bool) -> Result<Top<'de>, E> {
                Ok(Top::Other)
            }

            fn visit_i64<E>(self, _: i64) -> Result<Top<'de>, E> {
                Ok(Top::Other)
            }

            fn visit_u64<E>(self, _: u64) -> Result<Top<'de>, E> {
                Ok(Top::Other)
            }

            fn visit_f64<E>(self, _: f64) -> Result<Top<'de>, E> {
                Ok(Top::Other)
            }

            fn visit_str<E>(self, _: &str) -> Result<Top<'de>, E> {
                Ok(Top::Other)
            }

            fn visit_unit<E>(self) -> Result<Top<'de>, E> {
                Ok(Top::Other)
            }
        }

        deserializer.deserialize_any(TopVisitor)
    }
}

/// `headers` or `multiValueHeaders` as the crate's `deserialize_headers` reads them.
struct Headers(HeaderMap);

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor;

        impl<'de> Visitor<'de> for MapVisitor {
            type Value = Headers;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of header names and values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Headers, A::Error> {
                let mut out = HeaderMap::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let name = HeaderName::from_bytes(key.as_bytes()).map_err(|_| {
                        de::Error::invalid_value(de::Unexpected::Str(&key), &"a header name")
                    })?;
                    match map.next_value::<Values>()? {
                        Values::One(value) => {
                            out.insert(name, value);
                        }
                        Values::Many(values) => {
                            for value in values {
                                out.append(&name, value);
                            }
                        }
                    }
                }
                Ok(Headers(out))
            }
        }

        deserializer.deserialize_map(MapVisitor)
    }
}

/// A header's value: one string, or an array of strings or of byte arrays.
enum Values {
    One(HeaderValue),
    Many(Vec<HeaderValue>),
}

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValuesVisitor;

        impl<'de> Visitor<'de> for ValuesVisitor {
            type Value = Values;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, or an array of strings or of byte arrays")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Values, E> {
                HeaderValue::from_str(s)
                    .map(Values::One)
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(s), &self))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Values, A::Error> {
                let mut items: Vec<Item<'de>> = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                // The crate takes an array of strings (visible ASCII each) or one of byte
                // arrays (obs-text admitted), not a mix.
                let texts = items.iter().all(|i| matches!(i, Item::Text(_)));
                let bytes = items.iter().all(|i| matches!(i, Item::Bytes(_)));
                items
                    .iter()
                    .map(|item| match item {
                        Item::Text(s) if texts => HeaderValue::from_str(s)
                            .map_err(|_| de::Error::invalid_value(de::Unexpected::Str(s), &self)),
                        Item::Bytes(b) if bytes => HeaderValue::from_bytes(b)
                            .map_err(|_| de::Error::invalid_value(de::Unexpected::Bytes(b), &self)),
                        _ => Err(de::Error::custom(
                            "a header's values mix strings and byte arrays",
                        )),
                    })
                    .collect::<Result<_, _>>()
                    .map(Values::Many)
            }
        }

        deserializer.deserialize_any(ValuesVisitor)
    }
}

/// One element of a header's array of values.
enum Item<'a> {
    Text(Cow<'a, str>),
    Bytes(Vec<u8>),
}

impl<'de> Deserialize<'de> for Item<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemVisitor;

        impl<'de> Visitor<'de> for ItemVisitor {
            type Value = Item<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a byte array")
            }

            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Item<'de>, E> {
                Ok(Item::Text(Cow::Borrowed(s)))
            }

            fn visit_str<E>(self, s: &str) -> Result<Item<'de>, E> {
                Ok(Item::Text(Cow::Owned(s.to_owned())))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Item<'de>, A::Error> {
                let mut bytes = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    bytes.push(b);
                }
                Ok(Item::Bytes(bytes))
            }
        }

        deserializer.deserialize_any(ItemVisitor)
    }
}
