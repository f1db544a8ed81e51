//! proptest strategies for request bodies: JSON text that serde_json could
//! never build (duplicate keys, numbers past every integer type), values
//! of the type a schema asks for or of any other, and the mutations of a
//! valid body a careless or hostile client sends.
#![allow(dead_code, clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::Value;

/// JSON as text is written: objects keep duplicate keys and their order,
/// numbers are their literal.
#[derive(Debug, Clone)]
pub enum Json {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Num(n) => out.push_str(n),
            Json::Str(s) => out.push_str(&serde_json::to_string(s).unwrap()),
            Json::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Obj(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).unwrap());
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }

    pub fn from_value(v: &Value) -> Json {
        match v {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::Num(n.to_string()),
            Value::String(s) => Json::Str(s.clone()),
            Value::Array(a) => Json::Arr(a.iter().map(Json::from_value).collect()),
            Value::Object(o) => Json::Obj(
                o.iter()
                    .map(|(k, v)| (k.clone(), Json::from_value(v)))
                    .collect(),
            ),
        }
    }
}

/// Characters that trip parsers and validators: controls, NUL, bidi and
/// zero-width characters, combining marks, lookalikes, astral characters,
/// quotes and backslashes.
fn odd_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range(' ', '~'),
        2 => proptest::sample::select(vec![
            '\0', '\t', '\n', '\r', '\u{1b}', '\u{7f}', '\u{85}', '\u{a0}', '\u{ad}',
            '\u{200b}', '\u{200d}', '\u{202e}', '\u{2028}', '\u{2066}', '\u{3000}', '\u{feff}',
            '\u{301}', 'é', 'İ', '\u{212a}', '\u{ff0e}', '😀', '\u{e0001}', '\u{10ffff}',
            '\u{fffd}', '"', '\\', '\'', '<', '>', '&', '%', '@', '/', ':', '.', '*',
        ]),
        1 => any::<char>(),
    ]
}

/// Strings a body might carry: odd ones, long ones, and plausible values
/// (scope names, roles, URLs, timestamps, event types) that get past the
/// first checks and into the deeper ones.
pub fn odd_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::collection::vec(odd_char(), 0..24).prop_map(|cs| cs.into_iter().collect()),
        1 => (odd_char(), 60usize..400).prop_map(|(c, n)| std::iter::repeat_n(c, n).collect()),
        4 => proptest::sample::select(PLAUSIBLE.to_vec()).prop_map(str::to_string),
    ]
}

const PLAUSIBLE: &[&str] = &[
    "",
    " ",
    "ci",
    "keys:read",
    "connect:write",
    "connections:reveal",
    "owner",
    "admin",
    "viewer",
    "public",
    "private",
    "client_secret_post",
    "google",
    "gmail",
    "dynamiq.connections.OpenAI",
    "dynamiq.connections.GoogleOAuth2",
    "connection",
    "action_connector_account",
    "connection.created",
    "access_key.revoked",
    "https://app.example.invalid/done?x=1",
    "https://app.example.invalid",
    "http://localhost:3000/back",
    "http://127.0.0.1:9/hook",
    "javascript:alert(1)",
    "2099-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "someone@example.com",
    "App.Example.INVALID",
    "customer-7421",
    "prj_00000000000000000000000000",
    "env_00000000000000000000000000",
    "ver_00000000000000000000000000",
    "dyn_0000000000000000000000000000000000000000000000000000000",
    "../../etc/passwd",
    "'; DROP TABLE credentials; --",
];

/// Number literals, including ones no integer or float type holds.
pub fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<i64>().prop_map(|n| n.to_string()),
        2 => (-10i64..100_000).prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
        2 => proptest::sample::select(vec![
            "0", "-0", "1", "-1", "0.5", "1e3", "60", "86400", "86401", "604801",
            "2147483648", "4294967296", "9223372036854775807", "9223372036854775808",
            "-9223372036854775809", "18446744073709551616", "1e400", "-1e400",
            "123456789012345678901234567890123456789012345678901234567890",
        ]).prop_map(str::to_string),
    ]
}

/// Any JSON value, nested up to a few levels.
pub fn any_json() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        number().prop_map(Json::Num),
        odd_string().prop_map(Json::Str),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Json::Arr),
            proptest::collection::vec((odd_string(), inner), 0..5).prop_map(Json::Obj),
        ]
    })
}

/// `depth` arrays inside each other around `null`: past serde_json's
/// recursion limit when deep enough.
pub fn nested(depth: usize) -> Json {
    (0..depth).fold(Json::Null, |inner, _| Json::Arr(vec![inner]))
}

/// The type a JSON Schema asks for, ignoring `null`: `string`, `integer`,
/// `number`, `boolean`, `array`, `object`, or `None` when it says nothing.
pub fn schema_type(schema: &Value) -> Option<String> {
    match &schema["type"] {
        Value::String(t) => Some(t.clone()),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .map(str::to_string),
        _ => None,
    }
}

/// A value of the type `schema` asks for, with anything inside (a string
/// is any string, an array holds values of its item type).
pub fn typed(schema: &Value) -> BoxedStrategy<Json> {
    match schema_type(schema).as_deref() {
        Some("string") => odd_string().prop_map(Json::Str).boxed(),
        Some("integer") | Some("number") => number().prop_map(Json::Num).boxed(),
        Some("boolean") => any::<bool>().prop_map(Json::Bool).boxed(),
        Some("array") => {
            let item = typed(&schema["items"]);
            proptest::collection::vec(item, 0..5)
                .prop_map(Json::Arr)
                .boxed()
        }
        Some("object") => {
            let props: Vec<(String, Value)> = schema["properties"]
                .as_object()
                .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            if props.is_empty() {
                proptest::collection::vec((odd_string(), any_json()), 0..4)
                    .prop_map(Json::Obj)
                    .boxed()
            } else {
                schema_object(props)
            }
        }
        _ => any_json().boxed(),
    }
}

/// An object built from a schema's properties: each one left out, null,
/// of its own type, or of any type.
pub fn schema_object(props: Vec<(String, Value)>) -> BoxedStrategy<Json> {
    let fields: Vec<BoxedStrategy<Option<(String, Json)>>> = props
        .into_iter()
        .map(|(name, schema)| {
            let own = typed(&schema);
            let n1 = name.clone();
            let n2 = name.clone();
            let n3 = name;
            prop_oneof![
                2 => Just(None),
                1 => Just(Some((n1, Json::Null))),
                4 => own.prop_map(move |v| Some((n2.clone(), v))),
                1 => any_json().prop_map(move |v| Some((n3.clone(), v))),
            ]
            .boxed()
        })
        .collect();
    fields
        .prop_map(|fields| Json::Obj(fields.into_iter().flatten().collect()))
        .boxed()
}
