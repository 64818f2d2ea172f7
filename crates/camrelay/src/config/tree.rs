//! A located YAML tree: every node and key knows its line and column, and non-string scalars keep
//! their source text (so `password: 0123` or `username: yes` read back as the text the user wrote,
//! like go2rtc's string fields).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::ConfigError;

/// A YAML value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Item>),
    Map(Vec<(Key, Item)>),
}

/// A value with its place in the source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Item {
    pub node: Node,
    pub line: u64,
    pub column: u64,
    /// Source text of a plain scalar (`None` for strings, collections or when unknown).
    pub raw: Option<String>,
}

/// A mapping key with its place in the source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    pub name: String,
    pub line: u64,
    pub column: u64,
}

impl Item {
    /// The scalar as text: strings as they are, other scalars as written in the file. `None` for
    /// null and collections.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.node {
            Node::Str(s) => Some(s.clone()),
            Node::Bool(b) => Some(self.raw.clone().unwrap_or_else(|| b.to_string())),
            Node::Int(i) => Some(self.raw.clone().unwrap_or_else(|| i.to_string())),
            Node::Float(f) => Some(self.raw.clone().unwrap_or_else(|| f.to_string())),
            Node::Null | Node::Seq(_) | Node::Map(_) => None,
        }
    }

    /// What the value is, serde style, for "invalid type: X, expected Y" messages.
    pub fn describe(&self) -> String {
        match &self.node {
            Node::Null => "null".to_string(),
            Node::Bool(b) => format!("boolean `{b}`"),
            Node::Int(i) => format!("integer `{i}`"),
            Node::Float(_) => format!("floating point `{}`", self.scalar_text().unwrap_or_default()),
            Node::Str(s) => format!("string {s:?}"),
            Node::Seq(_) => "sequence".to_string(),
            Node::Map(_) => "mapping".to_string(),
        }
    }
}

/// The tree as serde-saphyr hands it over, before raw texts are attached.
enum RawNode {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawNode>>),
    Map(Vec<(Spanned<String>, Spanned<RawNode>)>),
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawVisitor;
        impl<'de> Visitor<'de> for RawVisitor {
            type Value = RawNode;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<RawNode, E> {
                Ok(RawNode::Null)
            }
            fn visit_none<E>(self) -> Result<RawNode, E> {
                Ok(RawNode::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawNode, D::Error> {
                RawNode::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<RawNode, E> {
                Ok(RawNode::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<RawNode, E> {
                Ok(RawNode::Int(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<RawNode, E> {
                Ok(RawNode::Int(v.into()))
            }
            fn visit_i128<E>(self, v: i128) -> Result<RawNode, E> {
                Ok(RawNode::Int(v))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<RawNode, E> {
                Ok(i128::try_from(v).map_or(RawNode::Float(v as f64), RawNode::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<RawNode, E> {
                Ok(RawNode::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<RawNode, E> {
                Ok(RawNode::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<RawNode, E> {
                Ok(RawNode::Str(v))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<RawNode, E> {
                Ok(RawNode::Str(String::from_utf8_lossy(v).into_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNode, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(RawNode::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNode, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(RawNode::Map(entries))
            }
        }
        deserializer.deserialize_any(RawVisitor)
    }
}

/// Converts a spanned raw node, attaching source texts. `shift` moves columns of line 1 (used for
/// `key=value` arguments, whose value is parsed on its own).
fn convert(spanned: Spanned<RawNode>, text: &str, shift: u64) -> Item {
    let loc = spanned.referenced;
    let line = loc.line();
    let column = if line == 1 { loc.column() + shift } else { loc.column() };
    let raw_text = || {
        let span = spanned.defined.span();
        let start = usize::try_from(span.byte_offset()?).ok()?;
        let len = usize::try_from(span.byte_len()?).ok()?;
        text.get(start..start.checked_add(len)?).map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
    };
    let (node, raw) = match spanned.value {
        RawNode::Null => (Node::Null, None),
        RawNode::Bool(b) => (Node::Bool(b), raw_text()),
        RawNode::Int(i) => (Node::Int(i), raw_text()),
        RawNode::Float(f) => (Node::Float(f), raw_text()),
        RawNode::Str(s) => (Node::Str(s), None),
        RawNode::Seq(items) => (Node::Seq(items.into_iter().map(|i| convert(i, text, shift)).collect()), None),
        RawNode::Map(entries) => (
            Node::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        let kline = k.referenced.line();
                        let kcol = k.referenced.column() + if kline == 1 { shift } else { 0 };
                        (Key { name: k.value, line: kline, column: kcol }, convert(v, text, shift))
                    })
                    .collect(),
            ),
            None,
        ),
    };
    Item { node, line, column, raw }
}

/// serde-saphyr's message without its " at line L, column C" suffix and developer hints.
fn clean_message(err: &serde_saphyr::Error) -> String {
    let mut msg = err.without_snippet().to_string();
    if let Some(loc) = err.location() {
        let suffix = format!(" at line {}, column {}", loc.line(), loc.column());
        if let Some(stripped) = msg.strip_suffix(&suffix) {
            msg = stripped.to_string();
        }
    }
    if let Some(i) = msg.find(", set DuplicateKeyPolicy") {
        msg.truncate(i);
    }
    msg
}

fn parse_shifted(text: &str, origin: &str, shift: u64) -> Result<Item, ConfigError> {
    match serde_saphyr::from_str::<Spanned<RawNode>>(text) {
        Ok(root) => Ok(convert(root, text, shift)),
        Err(err) => {
            let message = clean_message(&err);
            Err(match err.location() {
                Some(loc) => ConfigError::Invalid {
                    origin: origin.to_string(),
                    line: loc.line(),
                    column: if loc.line() == 1 { loc.column() + shift } else { loc.column() },
                    message,
                },
                None => ConfigError::Unlocated { origin: origin.to_string(), message },
            })
        }
    }
}

/// Parses one YAML (or JSON) document.
pub(crate) fn parse(text: &str, origin: &str) -> Result<Item, ConfigError> {
    parse_shifted(text, origin, 0)
}

/// Builds the tree of a `key.path=value` argument. Under `streams.` the rest of the key is the
/// stream name (it may contain dots). The value is a YAML scalar (or flow collection); text that
/// does not parse as YAML is taken as a plain string.
pub(crate) fn assignment(key: &str, value: &str, origin: &str) -> Result<Item, ConfigError> {
    let shift = key.len() as u64 + 1;
    let mut item = match parse_shifted(value, origin, shift) {
        Ok(item) => item,
        Err(_) => Item { node: Node::Str(value.to_string()), line: 1, column: shift + 1, raw: None },
    };
    let segments: Vec<&str> = match key.split_once('.') {
        Some(("streams", name)) => vec!["streams", name],
        _ => key.split('.').collect(),
    };
    if segments.iter().any(|s| s.is_empty()) {
        return Err(ConfigError::Invalid {
            origin: origin.to_string(),
            line: 1,
            column: 1,
            message: format!("invalid key path {key:?} (expected e.g. api.listen=:1985)"),
        });
    }
    let mut column = key.len() as u64 + 1;
    for segment in segments.iter().rev() {
        column -= segment.len() as u64;
        item = Item {
            node: Node::Map(vec![(Key { name: segment.to_string(), line: 1, column }, item)]),
            line: 1,
            column,
            raw: None,
        };
        column = column.saturating_sub(1);
    }
    Ok(item)
}
