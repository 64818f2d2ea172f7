//! AMF3 values (Adobe's AMF 3 specification), as clients with `objectEncoding: 3` send them inside AMF0
//! messages after the `avmplus-object` marker (0x11): command messages of type 17 and data messages of
//! type 15. Decode only; we always answer in AMF0.
//!
//! Supported: undefined, null, false, true, integer (U29, sign-extended), double, string, XML document
//! and XML (as strings), date, array (associative and dense parts), object (sealed and dynamic members,
//! inline traits and traits references) and byte array. Strings, objects and traits are reference tables
//! as the spec says. Vectors, dictionaries and externalizable objects (whose bytes only their class
//! knows) are refused with an error naming the type.
//!
//! Bounds: nesting depth ([`MAX_DEPTH`]), and a budget of decoded values ([`MAX_VALUES`]) that also
//! counts every copy a reference makes, so a few bytes of references to references cannot expand into
//! gigabytes. Reservations never exceed what the remaining input can fill.

use crate::amf0::Amf0Value;

/// Nesting deeper than this is refused.
pub const MAX_DEPTH: usize = 32;
/// Values (including those copied by references) one top-level value may expand to.
pub const MAX_VALUES: usize = 65_536;
/// Entries of each reference table.
const MAX_TABLE: usize = 4096;

const UNDEFINED: u8 = 0x00;
const NULL: u8 = 0x01;
const FALSE: u8 = 0x02;
const TRUE: u8 = 0x03;
const INTEGER: u8 = 0x04;
const DOUBLE: u8 = 0x05;
const STRING: u8 = 0x06;
const XML_DOC: u8 = 0x07;
const DATE: u8 = 0x08;
const ARRAY: u8 = 0x09;
const OBJECT: u8 = 0x0A;
const XML: u8 = 0x0B;
const BYTE_ARRAY: u8 = 0x0C;

/// One AMF3 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf3Value {
    Undefined,
    Null,
    Boolean(bool),
    /// A 29-bit signed integer.
    Integer(i32),
    Double(f64),
    /// String, XML document and XML.
    String(String),
    /// Milliseconds since the epoch, UTC.
    Date(f64),
    /// The associative part (name → value, in order) and the dense part.
    Array {
        assoc: Vec<(String, Amf3Value)>,
        dense: Vec<Amf3Value>,
    },
    /// An object: its class name (empty: anonymous), sealed members then dynamic members, in order.
    Object {
        class: String,
        props: Vec<(String, Amf3Value)>,
    },
    ByteArray(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Amf3Error {
    #[error("AMF3: truncated value")]
    Truncated,
    #[error("AMF3: unsupported type {name} (marker 0x{marker:02x})")]
    Unsupported { marker: u8, name: &'static str },
    #[error("AMF3: unknown type marker 0x{0:02x}")]
    UnknownType(u8),
    #[error("AMF3: nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("AMF3: value expands to more than {MAX_VALUES} values")]
    TooLarge,
    #[error("AMF3: {table} reference {index} to an entry that does not exist")]
    BadReference { table: &'static str, index: usize },
    #[error("AMF3: externalizable object of class {0:?} (its encoding is private to the class)")]
    Externalizable(String),
}

impl Amf3Value {
    /// The AMF0 value with the same meaning (what the rest of the crate reads): integers and doubles are
    /// numbers, an array with only a dense part is a strict array, otherwise an ECMA array (dense items
    /// keyed by index); byte arrays have no AMF0 form and become undefined.
    pub fn to_amf0(&self) -> Amf0Value {
        match self {
            Amf3Value::Undefined | Amf3Value::ByteArray(_) => Amf0Value::Undefined,
            Amf3Value::Null => Amf0Value::Null,
            Amf3Value::Boolean(b) => Amf0Value::Boolean(*b),
            Amf3Value::Integer(i) => Amf0Value::Number(f64::from(*i)),
            Amf3Value::Double(d) => Amf0Value::Number(*d),
            Amf3Value::String(s) => Amf0Value::String(s.clone()),
            Amf3Value::Date(ms) => Amf0Value::Date(*ms),
            Amf3Value::Array { assoc, dense } if assoc.is_empty() => {
                Amf0Value::StrictArray(dense.iter().map(Amf3Value::to_amf0).collect())
            }
            Amf3Value::Array { assoc, dense } => Amf0Value::EcmaArray(
                dense
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i.to_string(), v.to_amf0()))
                    .chain(assoc.iter().map(|(k, v)| (k.clone(), v.to_amf0())))
                    .collect(),
            ),
            Amf3Value::Object { props, .. } => {
                Amf0Value::Object(props.iter().map(|(k, v)| (k.clone(), v.to_amf0())).collect())
            }
        }
    }

    /// Values in this tree (itself included): what a reference to it costs.
    fn count(&self) -> usize {
        1 + match self {
            Amf3Value::Array { assoc, dense } => {
                assoc.iter().map(|(_, v)| v.count()).sum::<usize>() + dense.iter().map(Amf3Value::count).sum::<usize>()
            }
            Amf3Value::Object { props, .. } => props.iter().map(|(_, v)| v.count()).sum(),
            _ => 0,
        }
    }
}

#[derive(Debug, Clone)]
struct Traits {
    class: String,
    dynamic: bool,
    sealed: Vec<String>,
}

/// Decodes AMF3 values with one set of reference tables (one per `avmplus-object` switch in AMF0).
#[derive(Debug)]
pub struct Amf3Reader<'a> {
    data: &'a [u8],
    strings: Vec<String>,
    /// Complex values by reference index; `None` while the value is still being decoded (a reference
    /// to it then reads as undefined: AMF3 allows cycles, a tree cannot hold them).
    objects: Vec<Option<Amf3Value>>,
    traits: Vec<Traits>,
    budget: usize,
}

impl<'a> Amf3Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Amf3Reader { data, strings: Vec::new(), objects: Vec::new(), traits: Vec::new(), budget: MAX_VALUES }
    }

    /// What is left unread.
    pub fn remaining(&self) -> &'a [u8] {
        self.data
    }

    /// One value (its own budget of [`MAX_VALUES`]).
    pub fn read_value(&mut self) -> Result<Amf3Value, Amf3Error> {
        self.budget = MAX_VALUES;
        self.value(0)
    }

    /// Every value to the end of the input.
    pub fn read_all(mut self) -> Result<Vec<Amf3Value>, Amf3Error> {
        let mut out = Vec::new();
        while !self.data.is_empty() {
            out.push(self.read_value()?);
        }
        Ok(out)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Amf3Error> {
        if self.data.len() < n {
            return Err(Amf3Error::Truncated);
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, Amf3Error> {
        Ok(self.take(1)?[0])
    }

    /// A variable-length unsigned 29-bit integer: up to three bytes of 7 bits (high bit: more follows),
    /// then a fourth byte of 8 bits.
    fn u29(&mut self) -> Result<u32, Amf3Error> {
        let mut v = 0u32;
        for _ in 0..3 {
            let b = self.u8()?;
            v = (v << 7) | u32::from(b & 0x7f);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Ok((v << 8) | u32::from(self.u8()?))
    }

    fn f64(&mut self) -> Result<f64, Amf3Error> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    fn spend(&mut self, n: usize) -> Result<(), Amf3Error> {
        self.budget = self.budget.checked_sub(n).ok_or(Amf3Error::TooLarge)?;
        Ok(())
    }

    /// A string (`U29S-ref`): a reference into the string table or an inline UTF-8 string, which joins
    /// the table unless empty.
    fn string(&mut self) -> Result<String, Amf3Error> {
        let h = self.u29()? as usize;
        if h & 1 == 0 {
            let index = h >> 1;
            return self.strings.get(index).cloned().ok_or(Amf3Error::BadReference { table: "string", index });
        }
        let s = String::from_utf8_lossy(self.take(h >> 1)?).into_owned();
        if !s.is_empty() && self.strings.len() < MAX_TABLE {
            self.strings.push(s.clone());
        }
        Ok(s)
    }

    /// The header of a complex value: `Err(value)` for a reference (already resolved), `Ok(h >> 1)`
    /// for an inline value.
    fn object_header(&mut self) -> Result<Result<u32, Amf3Value>, Amf3Error> {
        let h = self.u29()?;
        if h & 1 == 0 {
            let index = (h >> 1) as usize;
            let v = match self.objects.get(index) {
                Some(Some(v)) => v.clone(),
                Some(None) => Amf3Value::Undefined,
                None => return Err(Amf3Error::BadReference { table: "object", index }),
            };
            self.spend(v.count())?;
            return Ok(Err(v));
        }
        Ok(Ok(h >> 1))
    }

    /// Reserves a place in the object table (filled by [`Self::finish`]).
    fn begin(&mut self) -> Option<usize> {
        (self.objects.len() < MAX_TABLE).then(|| {
            self.objects.push(None);
            self.objects.len() - 1
        })
    }

    fn finish(&mut self, slot: Option<usize>, v: Amf3Value) -> Amf3Value {
        if let Some(i) = slot {
            self.objects[i] = Some(v.clone());
        }
        v
    }

    fn value(&mut self, depth: usize) -> Result<Amf3Value, Amf3Error> {
        if depth > MAX_DEPTH {
            return Err(Amf3Error::TooDeep);
        }
        self.spend(1)?;
        let marker = self.u8()?;
        Ok(match marker {
            UNDEFINED => Amf3Value::Undefined,
            NULL => Amf3Value::Null,
            FALSE => Amf3Value::Boolean(false),
            TRUE => Amf3Value::Boolean(true),
            INTEGER => {
                let v = self.u29()?;
                // Sign-extend the 29 bits.
                Amf3Value::Integer(((v << 3) as i32) >> 3)
            }
            DOUBLE => Amf3Value::Double(self.f64()?),
            STRING => Amf3Value::String(self.string()?),
            XML_DOC | XML => match self.object_header()? {
                Err(v) => v,
                Ok(len) => {
                    let s = String::from_utf8_lossy(self.take(len as usize)?).into_owned();
                    let slot = self.begin();
                    self.finish(slot, Amf3Value::String(s))
                }
            },
            DATE => match self.object_header()? {
                Err(v) => v,
                Ok(_) => {
                    let ms = self.f64()?;
                    let slot = self.begin();
                    self.finish(slot, Amf3Value::Date(ms))
                }
            },
            BYTE_ARRAY => match self.object_header()? {
                Err(v) => v,
                Ok(len) => {
                    let b = self.take(len as usize)?.to_vec();
                    let slot = self.begin();
                    self.finish(slot, Amf3Value::ByteArray(b))
                }
            },
            ARRAY => match self.object_header()? {
                Err(v) => v,
                Ok(dense_len) => {
                    let slot = self.begin();
                    let mut assoc = Vec::new();
                    loop {
                        let key = self.string()?;
                        if key.is_empty() {
                            break;
                        }
                        let v = self.value(depth + 1)?;
                        assoc.push((key, v));
                    }
                    // Every value takes at least one byte.
                    let mut dense = Vec::with_capacity((dense_len as usize).min(self.data.len()));
                    for _ in 0..dense_len {
                        dense.push(self.value(depth + 1)?);
                    }
                    self.finish(slot, Amf3Value::Array { assoc, dense })
                }
            },
            OBJECT => match self.object_header()? {
                Err(v) => v,
                Ok(h) => {
                    let traits = if h & 1 == 0 {
                        let index = (h >> 1) as usize;
                        self.traits.get(index).cloned().ok_or(Amf3Error::BadReference { table: "traits", index })?
                    } else if h & 2 != 0 {
                        let class = self.string()?;
                        return Err(Amf3Error::Externalizable(class.chars().take(64).collect()));
                    } else {
                        let dynamic = h & 4 != 0;
                        let count = (h >> 3) as usize;
                        let class = self.string()?;
                        let mut sealed = Vec::with_capacity(count.min(self.data.len()));
                        for _ in 0..count {
                            sealed.push(self.string()?);
                        }
                        let t = Traits { class, dynamic, sealed };
                        if self.traits.len() < MAX_TABLE {
                            self.traits.push(t.clone());
                        }
                        t
                    };
                    let slot = self.begin();
                    let mut props = Vec::with_capacity(traits.sealed.len().min(self.data.len()));
                    for name in &traits.sealed {
                        let v = self.value(depth + 1)?;
                        props.push((name.clone(), v));
                    }
                    if traits.dynamic {
                        loop {
                            let key = self.string()?;
                            if key.is_empty() {
                                break;
                            }
                            let v = self.value(depth + 1)?;
                            props.push((key, v));
                        }
                    }
                    self.finish(slot, Amf3Value::Object { class: traits.class, props })
                }
            },
            0x0D => return Err(Amf3Error::Unsupported { marker, name: "vector-int" }),
            0x0E => return Err(Amf3Error::Unsupported { marker, name: "vector-uint" }),
            0x0F => return Err(Amf3Error::Unsupported { marker, name: "vector-double" }),
            0x10 => return Err(Amf3Error::Unsupported { marker, name: "vector-object" }),
            0x11 => return Err(Amf3Error::Unsupported { marker, name: "dictionary" }),
            other => return Err(Amf3Error::UnknownType(other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Result<Amf3Value, Amf3Error> {
        let mut r = Amf3Reader::new(bytes);
        let v = r.read_value()?;
        assert!(r.remaining().is_empty(), "left {:?}", r.remaining());
        Ok(v)
    }

    fn s(x: &str) -> Amf3Value {
        Amf3Value::String(x.into())
    }

    #[test]
    fn scalars_and_u29_from_the_spec() {
        assert_eq!(one(&[0x00]), Ok(Amf3Value::Undefined));
        assert_eq!(one(&[0x01]), Ok(Amf3Value::Null));
        assert_eq!(one(&[0x02]), Ok(Amf3Value::Boolean(false)));
        assert_eq!(one(&[0x03]), Ok(Amf3Value::Boolean(true)));
        // U29 in 1, 2, 3 and 4 bytes (0x7F, 0x80, 0x4000, 0x200000 and the largest values).
        assert_eq!(one(&[0x04, 0x7F]), Ok(Amf3Value::Integer(127)));
        assert_eq!(one(&[0x04, 0x81, 0x00]), Ok(Amf3Value::Integer(128)));
        assert_eq!(one(&[0x04, 0xFF, 0x7F]), Ok(Amf3Value::Integer(0x3FFF)));
        assert_eq!(one(&[0x04, 0x81, 0x80, 0x00]), Ok(Amf3Value::Integer(0x4000)));
        assert_eq!(one(&[0x04, 0xFF, 0xFF, 0x7F]), Ok(Amf3Value::Integer(0x1F_FFFF)));
        assert_eq!(one(&[0x04, 0x80, 0xC0, 0x80, 0x00]), Ok(Amf3Value::Integer(0x20_0000)));
        // 0x0FFFFFFF is the largest positive integer; the 29th bit is the sign.
        assert_eq!(one(&[0x04, 0xBF, 0xFF, 0xFF, 0xFF]), Ok(Amf3Value::Integer(0x0FFF_FFFF)));
        assert_eq!(one(&[0x04, 0xFF, 0xFF, 0xFF, 0xFF]), Ok(Amf3Value::Integer(-1)));
        assert_eq!(one(&[0x04, 0xC0, 0x80, 0x80, 0x00]), Ok(Amf3Value::Integer(-(1 << 28))));
        assert_eq!(one(&[0x05, 0x3F, 0xF8, 0, 0, 0, 0, 0, 0]), Ok(Amf3Value::Double(1.5)));
        assert_eq!(
            one(&[0x08, 0x01, 0x42, 0x10, 0, 0, 0, 0, 0, 0]).map(|v| v.to_amf0()),
            Ok(Amf0Value::Date(17179869184.0))
        );
    }

    #[test]
    fn strings_and_the_string_table() {
        // "hello", then a reference to string 0, then the empty string (never a table entry), then an
        // inline "x" (table entry 1) and a reference to it.
        let bytes = [
            0x09, 0x0B, 0x01, // dense array of 5, no associative part
            0x06, 0x0B, b'h', b'e', b'l', b'l', b'o', //
            0x06, 0x00, //
            0x06, 0x01, //
            0x06, 0x03, b'x', //
            0x06, 0x02,
        ];
        let v = one(&bytes).unwrap();
        assert_eq!(v, Amf3Value::Array { assoc: vec![], dense: vec![s("hello"), s("hello"), s(""), s("x"), s("x")] });
        assert_eq!(one(&[0x06, 0x04]), Err(Amf3Error::BadReference { table: "string", index: 2 }));
        // Invalid UTF-8 is replaced, not refused (cameras send Latin-1).
        assert_eq!(one(&[0x06, 0x03, 0xE9]), Ok(s("\u{FFFD}")));
    }

    #[test]
    fn objects_dynamic_sealed_and_traits_references() {
        // [ {app: "live", objectEncoding: 3} (anonymous, dynamic), a typed sealed object of class "P"
        //   with members x, y, then a second P by traits reference, then a reference to object 1 ].
        let bytes = [
            0x09, 0x09, 0x01, // dense array of 4 (object 0)
            0x0A, 0x0B, 0x01, // object 1: inline traits, dynamic, 0 sealed, class "" (empty)
            0x07, b'a', b'p', b'p', 0x06, 0x09, b'l', b'i', b'v', b'e', //
            0x1D, b'o', b'b', b'j', b'e', b'c', b't', b'E', b'n', b'c', b'o', b'd', b'i', b'n', b'g', 0x04, 0x03,
            0x01, // end of dynamic members
            0x0A, 0x23, 0x03, b'P', 0x03, b'x', 0x03, b'y', 0x04, 0x01, 0x04, 0x02, // object 2: sealed P{x,y}
            0x0A, 0x05, 0x04, 0x05, 0x04, 0x06, // object 3: traits reference 1 (P)
            0x0A, 0x02, // reference to object 1
        ];
        let v = one(&bytes).unwrap();
        let Amf3Value::Array { dense, .. } = &v else { panic!("{v:?}") };
        let connect = Amf3Value::Object {
            class: String::new(),
            props: vec![("app".into(), s("live")), ("objectEncoding".into(), Amf3Value::Integer(3))],
        };
        assert_eq!(dense[0], connect);
        let p = |x, y| Amf3Value::Object {
            class: "P".into(),
            props: vec![("x".into(), Amf3Value::Integer(x)), ("y".into(), Amf3Value::Integer(y))],
        };
        assert_eq!(dense[1], p(1, 2));
        assert_eq!(dense[2], p(5, 6));
        assert_eq!(dense[3], connect);
        let amf0 = dense[0].to_amf0();
        assert_eq!(amf0.get("objectEncoding").and_then(Amf0Value::as_number), Some(3.0));
    }

    #[test]
    fn arrays_byte_arrays_xml() {
        // Associative part {a: 1} then dense [true]: an ECMA array in AMF0 terms.
        let v = one(&[0x09, 0x03, 0x03, b'a', 0x04, 0x01, 0x01, 0x03]).unwrap();
        assert_eq!(
            v,
            Amf3Value::Array {
                assoc: vec![("a".into(), Amf3Value::Integer(1))],
                dense: vec![Amf3Value::Boolean(true)]
            }
        );
        assert_eq!(
            v.to_amf0(),
            Amf0Value::EcmaArray(vec![("0".into(), Amf0Value::Boolean(true)), ("a".into(), Amf0Value::Number(1.0))])
        );
        assert_eq!(one(&[0x0C, 0x07, 1, 2, 3]), Ok(Amf3Value::ByteArray(vec![1, 2, 3])));
        assert_eq!(one(&[0x0B, 0x07, b'<', b'a', b'>']), Ok(s("<a>")));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(one(&[0x04, 0x80]), Err(Amf3Error::Truncated));
        assert_eq!(one(&[0x0C, 0x7F]), Err(Amf3Error::Truncated));
        assert_eq!(one(&[0x0D, 0x01]), Err(Amf3Error::Unsupported { marker: 0x0D, name: "vector-int" }));
        assert_eq!(one(&[0x11]), Err(Amf3Error::Unsupported { marker: 0x11, name: "dictionary" }));
        assert_eq!(one(&[0x20]), Err(Amf3Error::UnknownType(0x20)));
        assert_eq!(one(&[0x0A, 0x07, 0x03, b'C']), Err(Amf3Error::Externalizable("C".into())));
        assert_eq!(one(&[0x0A, 0x00]), Err(Amf3Error::BadReference { table: "object", index: 0 }));
        assert_eq!(one(&[0x0A, 0x01]), Err(Amf3Error::BadReference { table: "traits", index: 0 }));
        // A dense array claiming 2^28 items with nothing behind it.
        assert_eq!(one(&[0x09, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]), Err(Amf3Error::Truncated));
        let mut deep = Vec::new();
        for _ in 0..100 {
            deep.extend_from_slice(&[0x09, 0x03, 0x01]);
        }
        deep.push(0x01);
        assert_eq!(one(&deep), Err(Amf3Error::TooDeep));
    }

    #[test]
    fn references_cannot_expand_without_bound() {
        // [A, B, C] with A = [null x 100], B = [A x 100] and C = [B x 100] (by reference): 10^6 values
        // from ~600 bytes.
        let mut b = vec![0x09, 0x07, 0x01];
        b.extend_from_slice(&[0x09, 0x81, 0x49, 0x01]);
        b.extend(std::iter::repeat_n(0x01, 100));
        for reference in [0x02, 0x04] {
            b.extend_from_slice(&[0x09, 0x81, 0x49, 0x01]);
            b.extend(std::iter::repeat_n([0x09, reference], 100).flatten());
        }
        assert_eq!(one(&b), Err(Amf3Error::TooLarge));
        // Two levels (10^4 values) are fine.
        let two = &b[..b.len() - 200 - 4];
        let mut two = two.to_vec();
        two[1] = 0x05;
        assert!(matches!(one(&two), Ok(Amf3Value::Array { dense, .. }) if dense.len() == 2));
        // A cyclic object (it refers to itself) reads as undefined in place of the cycle.
        let v = one(&[0x0A, 0x0B, 0x01, 0x03, b's', 0x0A, 0x00, 0x01]).unwrap();
        assert_eq!(v, Amf3Value::Object { class: String::new(), props: vec![("s".into(), Amf3Value::Undefined)] });
    }
}
