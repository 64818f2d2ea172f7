//! AMF0 values (the encoding of RTMP commands and metadata): decode with a depth bound, encode.
//!
//! Strings are read leniently (invalid UTF-8 is replaced, as cameras send Latin-1 names). Object-like
//! values keep their property order. Decoding never allocates more than the input can fill.
//!
//! The `avmplus-object` marker (0x11) switches to AMF3 for one value (clients with `objectEncoding: 3`
//! do this in commands of type 17 and data of type 15): it is decoded by [`crate::amf3`], with fresh
//! reference tables, and read as the AMF0 value of the same meaning ([`crate::Amf3Value::to_amf0`]).

use bytes::{BufMut, BytesMut};

/// Nesting deeper than this is refused (objects in arrays in objects...).
pub const MAX_DEPTH: usize = 32;

const NUMBER: u8 = 0x00;
const BOOLEAN: u8 = 0x01;
const STRING: u8 = 0x02;
const OBJECT: u8 = 0x03;
const NULL: u8 = 0x05;
const UNDEFINED: u8 = 0x06;
const ECMA_ARRAY: u8 = 0x08;
const OBJECT_END: u8 = 0x09;
const STRICT_ARRAY: u8 = 0x0A;
const DATE: u8 = 0x0B;
const LONG_STRING: u8 = 0x0C;
const UNSUPPORTED: u8 = 0x0D;
const XML_DOCUMENT: u8 = 0x0F;
const TYPED_OBJECT: u8 = 0x10;
const AVMPLUS_OBJECT: u8 = 0x11;

/// One AMF0 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf0Value {
    Number(f64),
    Boolean(bool),
    /// String, long string and XML document.
    String(String),
    /// Anonymous and typed objects (the class name of a typed object is dropped).
    Object(Vec<(String, Amf0Value)>),
    Null,
    /// Undefined and "unsupported".
    Undefined,
    EcmaArray(Vec<(String, Amf0Value)>),
    StrictArray(Vec<Amf0Value>),
    /// Milliseconds since the epoch (the time zone field is ignored, as the spec says).
    Date(f64),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Amf0Error {
    #[error("AMF0: truncated value")]
    Truncated,
    #[error("AMF0: unknown or unsupported type marker 0x{0:02x}")]
    UnknownType(u8),
    #[error("AMF0: nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    /// An AMF3 value (after the `avmplus-object` marker) that did not decode.
    #[error(transparent)]
    Amf3(#[from] crate::amf3::Amf3Error),
}

impl Amf0Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<f64> {
        match self {
            Amf0Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// A property of an object or ECMA array.
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        match self {
            Amf0Value::Object(p) | Amf0Value::EcmaArray(p) => p.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// An object from `(key, value)` pairs.
    pub fn object<'a>(props: impl IntoIterator<Item = (&'a str, Amf0Value)>) -> Amf0Value {
        Amf0Value::Object(props.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    pub fn string(s: impl Into<String>) -> Amf0Value {
        Amf0Value::String(s.into())
    }

    /// Appends the encoding of this value.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Amf0Value::Number(n) => {
                out.put_u8(NUMBER);
                out.put_f64(*n);
            }
            Amf0Value::Boolean(b) => {
                out.put_u8(BOOLEAN);
                out.put_u8(u8::from(*b));
            }
            Amf0Value::String(s) => {
                if s.len() <= usize::from(u16::MAX) {
                    out.put_u8(STRING);
                    put_short_string(out, s);
                } else {
                    out.put_u8(LONG_STRING);
                    put_long_string(out, s);
                }
            }
            Amf0Value::Object(props) => {
                out.put_u8(OBJECT);
                put_props(out, props);
            }
            Amf0Value::Null => out.put_u8(NULL),
            Amf0Value::Undefined => out.put_u8(UNDEFINED),
            Amf0Value::EcmaArray(props) => {
                out.put_u8(ECMA_ARRAY);
                out.put_u32(u32::try_from(props.len()).unwrap_or(u32::MAX));
                put_props(out, props);
            }
            Amf0Value::StrictArray(items) => {
                out.put_u8(STRICT_ARRAY);
                out.put_u32(u32::try_from(items.len()).unwrap_or(u32::MAX));
                for v in items {
                    v.encode(out);
                }
            }
            Amf0Value::Date(ms) => {
                out.put_u8(DATE);
                out.put_f64(*ms);
                out.put_i16(0);
            }
        }
    }
}

fn put_short_string(out: &mut BytesMut, s: &str) {
    // Keys and short strings are at most 65535 bytes; longer keys are cut at a char boundary.
    let mut end = s.len().min(usize::from(u16::MAX));
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.put_u16(end as u16);
    out.put_slice(&s.as_bytes()[..end]);
}

fn put_long_string(out: &mut BytesMut, s: &str) {
    let mut end = s.len().min(u32::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.put_u32(end as u32);
    out.put_slice(&s.as_bytes()[..end]);
}

fn put_props(out: &mut BytesMut, props: &[(String, Amf0Value)]) {
    for (k, v) in props {
        put_short_string(out, k);
        v.encode(out);
    }
    out.put_slice(&[0, 0, OBJECT_END]);
}

/// Encodes values one after another (a command or a data message body).
pub fn encode_all(values: &[Amf0Value]) -> BytesMut {
    let mut out = BytesMut::new();
    for v in values {
        v.encode(&mut out);
    }
    out
}

/// Reads AMF0 values from a byte slice.
#[derive(Debug)]
pub struct Amf0Reader<'a> {
    data: &'a [u8],
}

impl<'a> Amf0Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Amf0Reader { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// What is left unread.
    pub fn remaining(&self) -> &'a [u8] {
        self.data
    }

    /// The next value, or `None` at the end of the input.
    pub fn next_value(&mut self) -> Result<Option<Amf0Value>, Amf0Error> {
        if self.data.is_empty() {
            return Ok(None);
        }
        self.value(0).map(Some)
    }

    /// Every value to the end of the input.
    pub fn read_all(mut self) -> Result<Vec<Amf0Value>, Amf0Error> {
        let mut out = Vec::new();
        while let Some(v) = self.next_value()? {
            out.push(v);
        }
        Ok(out)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Amf0Error> {
        if self.data.len() < n {
            return Err(Amf0Error::Truncated);
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, Amf0Error> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Amf0Error> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Amf0Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, Amf0Error> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    fn short_string(&mut self) -> Result<String, Amf0Error> {
        let n = usize::from(self.u16()?);
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }

    fn long_string(&mut self) -> Result<String, Amf0Error> {
        let n = self.u32()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }

    fn value(&mut self, depth: usize) -> Result<Amf0Value, Amf0Error> {
        if depth > MAX_DEPTH {
            return Err(Amf0Error::TooDeep);
        }
        let marker = self.u8()?;
        Ok(match marker {
            NUMBER => Amf0Value::Number(self.f64()?),
            BOOLEAN => Amf0Value::Boolean(self.u8()? != 0),
            STRING => Amf0Value::String(self.short_string()?),
            OBJECT => Amf0Value::Object(self.props(depth)?),
            NULL => Amf0Value::Null,
            UNDEFINED | UNSUPPORTED => Amf0Value::Undefined,
            ECMA_ARRAY => {
                // The count is a hint that encoders get wrong; the object end marker ends the array.
                let _count = self.u32()?;
                Amf0Value::EcmaArray(self.props(depth)?)
            }
            STRICT_ARRAY => {
                let count = self.u32()? as usize;
                // Every value takes at least one byte: never reserve more than the input can hold.
                let mut items = Vec::with_capacity(count.min(self.data.len()));
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Amf0Value::StrictArray(items)
            }
            DATE => {
                let ms = self.f64()?;
                self.take(2)?;
                Amf0Value::Date(ms)
            }
            LONG_STRING | XML_DOCUMENT => Amf0Value::String(self.long_string()?),
            TYPED_OBJECT => {
                let _class = self.short_string()?;
                Amf0Value::Object(self.props(depth)?)
            }
            AVMPLUS_OBJECT => {
                let mut r = crate::amf3::Amf3Reader::new(self.data);
                let v = r.read_value()?;
                self.data = r.remaining();
                v.to_amf0()
            }
            other => return Err(Amf0Error::UnknownType(other)),
        })
    }

    fn props(&mut self, depth: usize) -> Result<Vec<(String, Amf0Value)>, Amf0Error> {
        let mut props = Vec::new();
        loop {
            let key = self.short_string()?;
            if key.is_empty() && self.data.first() == Some(&OBJECT_END) {
                self.take(1)?;
                return Ok(props);
            }
            let v = self.value(depth + 1)?;
            props.push((key, v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_type() {
        let values = vec![
            Amf0Value::Number(1.5),
            Amf0Value::Boolean(true),
            Amf0Value::string("connect"),
            Amf0Value::object([("app", Amf0Value::string("live")), ("n", Amf0Value::Number(3.0))]),
            Amf0Value::Null,
            Amf0Value::Undefined,
            Amf0Value::EcmaArray(vec![("width".into(), Amf0Value::Number(640.0))]),
            Amf0Value::StrictArray(vec![Amf0Value::Null, Amf0Value::Boolean(false)]),
            Amf0Value::Date(12345.0),
            Amf0Value::String("x".repeat(70_000)),
        ];
        let bytes = encode_all(&values);
        assert_eq!(Amf0Reader::new(&bytes).read_all().unwrap(), values);
    }

    #[test]
    fn known_bytes() {
        // "connect", 1.0, {app: "live"}
        let bytes: &[u8] = &[
            0x02, 0x00, 0x07, b'c', b'o', b'n', b'n', b'e', b'c', b't', 0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x03, 0x00,
            0x03, b'a', b'p', b'p', 0x02, 0x00, 0x04, b'l', b'i', b'v', b'e', 0x00, 0x00, 0x09,
        ];
        let v = Amf0Reader::new(bytes).read_all().unwrap();
        assert_eq!(v[0].as_str(), Some("connect"));
        assert_eq!(v[1].as_number(), Some(1.0));
        assert_eq!(v[2].get("app").and_then(Amf0Value::as_str), Some("live"));
        assert_eq!(&encode_all(&v)[..], bytes);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(Amf0Reader::new(&[0x00, 1, 2]).read_all(), Err(Amf0Error::Truncated));
        assert_eq!(Amf0Reader::new(&[0x0E]).read_all(), Err(Amf0Error::UnknownType(0x0E)));
        assert_eq!(Amf0Reader::new(&[0x11]).read_all(), Err(Amf0Error::Amf3(crate::Amf3Error::Truncated)));
        assert_eq!(
            Amf0Reader::new(&[0x11, 0x0D]).read_all().unwrap_err().to_string(),
            "AMF3: unsupported type vector-int (marker 0x0d)"
        );
        assert_eq!(Amf0Reader::new(&[0x03, 0, 1, b'a']).read_all(), Err(Amf0Error::Truncated));
        // A strict array claiming 4 billion entries with nothing behind it.
        assert_eq!(Amf0Reader::new(&[0x0A, 0xff, 0xff, 0xff, 0xff]).read_all(), Err(Amf0Error::Truncated));
        let mut deep = Vec::new();
        for _ in 0..100 {
            deep.extend_from_slice(&[0x0A, 0, 0, 0, 1]);
        }
        deep.push(0x05);
        assert_eq!(Amf0Reader::new(&deep).read_all(), Err(Amf0Error::TooDeep));
    }
}
