//! The Singer wire format: message types and the line reader. The only
//! module that knows what a Singer line looks like.

pub mod reader;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use crate::scan::{self, Scanner, SyntaxError};

/// Errors in one input line.
#[derive(Debug, thiserror::Error)]
pub enum SingerError {
    /// Not JSON.
    #[error("{0}")]
    Syntax(#[from] SyntaxError),
    /// Bytes that are not UTF-8.
    #[error("the line is not valid UTF-8 (byte {0}); Singer messages must be UTF-8 JSON")]
    NotUtf8(usize),
    /// A required envelope key is missing.
    #[error("{kind} message has no '{key}'")]
    Missing {
        /// Message type.
        kind: &'static str,
        /// Missing key.
        key: &'static str,
    },
    /// A control message of the right type but wrong shape.
    #[error("malformed {kind} message: {msg}")]
    Malformed {
        /// Message type.
        kind: &'static str,
        /// serde's description.
        msg: String,
    },
    /// JSON, but not a Singer message.
    #[error("not a Singer message: the line has no \"type\" key")]
    NoType,
}

/// A SCHEMA message.
#[derive(Debug, Clone, Deserialize)]
pub struct SchemaMessage {
    /// Stream name.
    pub stream: String,
    /// JSON Schema of the records.
    pub schema: Value,
    /// Primary key columns.
    #[serde(default)]
    pub key_properties: Vec<String>,
    /// Replication key columns.
    #[serde(default)]
    pub bookmark_properties: Option<Vec<String>>,
}

/// A BATCH message (Meltano SDK): records in files.
#[derive(Debug, Clone, Deserialize)]
pub struct BatchMessage {
    /// Stream name.
    pub stream: String,
    /// How the files are encoded.
    pub encoding: BatchEncoding,
    /// File URIs (`file://…`).
    pub manifest: Vec<String>,
}

/// The encoding of BATCH files.
#[derive(Debug, Clone, Deserialize)]
pub struct BatchEncoding {
    /// `jsonl` or `parquet`.
    pub format: String,
    /// `gzip` or none.
    #[serde(default)]
    pub compression: Option<String>,
}

/// A RECORD line, borrowed from the input.
#[derive(Debug)]
pub struct RecordLine<'a> {
    /// Stream name.
    pub stream: Cow<'a, str>,
    /// Raw JSON of the record object.
    pub record: &'a [u8],
    /// `time_extracted` and `version`.
    pub meta: RecordMeta<'a>,
}

/// One decoded line.
#[derive(Debug)]
pub enum Line<'a> {
    /// RECORD (the hot path).
    Record(RecordLine<'a>),
    /// SCHEMA.
    Schema(SchemaMessage),
    /// STATE with its value.
    State(Value),
    /// ACTIVATE_VERSION.
    ActivateVersion {
        /// Stream name.
        stream: String,
        /// Table version.
        version: i64,
    },
    /// BATCH.
    Batch(BatchMessage),
    /// A message type inlet does not act on (e.g. Mage's LOG), or a blank line.
    Ignored(String),
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Record,
    Schema,
    State,
    Activate,
    Batch,
    Other,
}

fn kind_of(t: &[u8]) -> Kind {
    let eq = |s: &str| t.eq_ignore_ascii_case(s.as_bytes());
    if eq("RECORD") {
        Kind::Record
    } else if eq("SCHEMA") {
        Kind::Schema
    } else if eq("STATE") {
        Kind::State
    } else if eq("ACTIVATE_VERSION") {
        Kind::Activate
    } else if eq("BATCH") {
        Kind::Batch
    } else {
        Kind::Other
    }
}

/// Parses one line (without its newline).
pub fn parse_line(line: &[u8]) -> Result<Line<'_>, SingerError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(Line::Ignored(String::new()));
    }
    if let Err(e) = std::str::from_utf8(line) {
        return Err(SingerError::NotUtf8(e.valid_up_to()));
    }
    let mut sc = Scanner::new(line);
    if !sc.begin_object()? {
        sc.skip_value()?;
        sc.end()?;
        return Err(SingerError::NoType);
    }
    let mut kind = None;
    let mut type_text = String::new();
    let mut stream = None;
    let mut record = None;
    let mut time_extracted = None;
    let mut version = None;
    let mut first = true;
    while let Some((key, _)) = sc.next_key(first)? {
        first = false;
        match key {
            b"type" if sc.peek()? == b'"' => {
                let (t, _) = sc.raw_string()?;
                kind = Some(kind_of(t));
                type_text = String::from_utf8_lossy(t).into_owned();
            }
            b"stream" if sc.peek()? == b'"' => {
                let (s, esc) = sc.raw_string()?;
                stream = Some(
                    scan::string_value(s, esc)
                        .map_err(|what| SyntaxError { at: sc.pos(), what })?,
                );
            }
            b"record" => record = Some(sc.skip_value()?),
            b"time_extracted" if sc.peek()? == b'"' => time_extracted = Some(sc.raw_string()?.0),
            b"version" => version = version_of(sc.skip_value()?),
            _ => {
                sc.skip_value()?;
            }
        }
    }
    sc.end()?;
    let full = || serde_json::from_slice::<Value>(line);
    match kind {
        None => Err(SingerError::NoType),
        Some(Kind::Record) => Ok(Line::Record(RecordLine {
            stream: stream.ok_or(SingerError::Missing {
                kind: "RECORD",
                key: "stream",
            })?,
            record: record.ok_or(SingerError::Missing {
                kind: "RECORD",
                key: "record",
            })?,
            meta: RecordMeta {
                time_extracted,
                version,
            },
        })),
        Some(Kind::Schema) => {
            let m: SchemaMessage =
                serde_json::from_slice(line).map_err(|e| malformed("SCHEMA", e))?;
            Ok(Line::Schema(m))
        }
        Some(Kind::State) => {
            let v = full().map_err(|e| malformed("STATE", e))?;
            let value = v.get("value").cloned().ok_or(SingerError::Missing {
                kind: "STATE",
                key: "value",
            })?;
            Ok(Line::State(value))
        }
        Some(Kind::Activate) => {
            let v = full().map_err(|e| malformed("ACTIVATE_VERSION", e))?;
            let version = v
                .get("version")
                .and_then(Value::as_i64)
                .ok_or(SingerError::Missing {
                    kind: "ACTIVATE_VERSION",
                    key: "version",
                })?;
            Ok(Line::ActivateVersion {
                stream: stream.map(Cow::into_owned).ok_or(SingerError::Missing {
                    kind: "ACTIVATE_VERSION",
                    key: "stream",
                })?,
                version,
            })
        }
        Some(Kind::Batch) => {
            let m: BatchMessage =
                serde_json::from_slice(line).map_err(|e| malformed("BATCH", e))?;
            Ok(Line::Batch(m))
        }
        Some(Kind::Other) => Ok(Line::Ignored(type_text)),
    }
}

/// Fast path for the usual key order, `{"type":"RECORD","stream":"s","record":…`:
/// returns the stream and a scanner at the record value, so the record is
/// decoded in the same pass. Anything unusual returns None (use [`parse_line`]).
pub fn record_head(line: &str) -> Option<(Cow<'_, str>, Scanner<'_>)> {
    let mut sc = Scanner::new(line.as_bytes());
    // what taps write: keys matched in place, no key scanned
    if sc.begin_object().ok()?
        && sc.try_key(true, br#""type""#).ok()?
        && kind_of(sc.raw_string().ok()?.0) == Kind::Record
        && sc.try_key(false, br#""stream""#).ok()?
    {
        let stream = stream_name(line, &mut sc)?;
        if sc.try_key(false, br#""record""#).ok()? {
            return Some((stream, sc));
        }
    }
    let mut sc = Scanner::new(line.as_bytes());
    if !sc.begin_object().ok()? {
        return None;
    }
    let (mut is_record, mut stream) = (false, None);
    let mut first = true;
    while let Some((key, _)) = sc.next_key(first).ok()? {
        first = false;
        match key {
            b"type" => {
                let (t, _) = sc.raw_string().ok()?;
                if kind_of(t) != Kind::Record {
                    return None;
                }
                is_record = true;
            }
            b"stream" => stream = Some(stream_name(line, &mut sc)?),
            b"record" if is_record => return stream.map(|s| (s, sc)),
            _ => return None,
        }
    }
    None
}

/// The string at the cursor of a scanner over `line`.
fn stream_name<'a>(line: &'a str, sc: &mut Scanner<'a>) -> Option<Cow<'a, str>> {
    let (s, esc) = sc.raw_string().ok()?;
    if esc {
        return scan::string_value(s, esc).ok();
    }
    // a slice of `line` between two quotes: text already
    let at = s.as_ptr() as usize - line.as_ptr() as usize;
    line.get(at..at + s.len()).map(Cow::Borrowed)
}

/// What a RECORD line says besides its record: `time_extracted` and the
/// table `version` of full-table replication.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordMeta<'a> {
    /// Raw `time_extracted` string body, if any.
    pub time_extracted: Option<&'a [u8]>,
    /// `version`, if an integer.
    pub version: Option<i64>,
}

fn version_of(raw: &[u8]) -> Option<i64> {
    std::str::from_utf8(raw).ok()?.trim().parse().ok()
}

/// The rest of a RECORD line after its record value.
pub fn record_tail<'a>(sc: &mut Scanner<'a>) -> Result<RecordMeta<'a>, SyntaxError> {
    let mut meta = RecordMeta::default();
    while let Some((raw, escapes)) = sc.next_key(false)? {
        let at = sc.pos();
        let key = scan::string_value(raw, escapes).map_err(|what| SyntaxError { at, what })?;
        // the head already took these: a second one would route the line
        // differently than the full parser, which keeps the last
        if matches!(&*key, "type" | "stream" | "record") {
            return Err(SyntaxError {
                at,
                what: "the RECORD message repeats its \"type\", \"stream\" or \"record\" key",
            });
        }
        if key == "time_extracted" && sc.peek()? == b'"' {
            meta.time_extracted = Some(sc.raw_string()?.0);
        } else if key == "version" {
            meta.version = version_of(sc.skip_value()?);
        } else {
            sc.skip_value()?;
        }
    }
    sc.end()?;
    Ok(meta)
}

fn malformed(kind: &'static str, e: serde_json::Error) -> SingerError {
    SingerError::Malformed {
        kind,
        msg: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_line_that_repeats_its_stream_is_refused_by_the_fast_path() {
        // found by the singer_line fuzz target: the head routed the line to
        // the first stream, the full parser to the last
        for l in [
            r#"{"type":"RECORD","stream":"a","record":{"id":1},"stream":"b"}"#,
            r#"{"type":"RECORD","stream":"a","record":{"id":1},"str\u0065am":"b"}"#,
            r#"{"type":"RECORD","stream":"a","record":{"id":1},"record":{"id":2}}"#,
        ] {
            let (_, mut sc) = record_head(l).unwrap();
            sc.skip_value().unwrap();
            let e = record_tail(&mut sc).unwrap_err();
            assert!(e.what.contains("repeats"), "{l}: {e}");
        }
        let (_, mut sc) =
            record_head(r#"{"type":"RECORD","stream":"a","record":{},"version":3}"#).unwrap();
        sc.skip_value().unwrap();
        assert_eq!(record_tail(&mut sc).unwrap().version, Some(3));
    }

    #[test]
    fn record_head_finds_stream_and_record_in_any_usual_order() {
        let head = |l: &str| {
            record_head(l).map(|(s, mut sc)| (s.into_owned(), sc.skip_value().unwrap().to_vec()))
        };
        let want = Some(("public-items".to_string(), br#"{"id": 1}"#.to_vec()));
        for l in [
            r#"{"type":"RECORD","stream":"public-items","record":{"id": 1}}"#,
            r#"{ "type" : "record" , "stream" : "public-items" , "record" : {"id": 1}}"#,
            r#"{"stream":"public-items","type":"RECORD","record":{"id": 1}}"#,
            r#"{"type":"RECORD","stream":"public\u002ditems","record":{"id": 1}}"#,
        ] {
            assert_eq!(head(l), want, "{l}");
        }
        // left to the full parser
        for l in [
            r#"{"type":"STATE","value":{}}"#,
            r#"{"record":{"id": 1},"type":"RECORD","stream":"s"}"#,
            r#"{"type":"RECORD","record":{"id": 1}}"#,
            r#"{"type":"RECORD","stream":7,"record":{"id": 1}}"#,
            r#"{"type":"RECOR\u0044","stream":"s","record":{"id": 1}}"#,
        ] {
            assert_eq!(head(l), None, "{l}");
        }
    }

    #[test]
    fn parses_each_message_type() {
        let l = br#"{"type": "record", "record": {"id": 1}, "stream": "public-items", "time_extracted": "2020-01-01T00:00:00Z"}"#;
        let Line::Record(r) = parse_line(l).unwrap() else {
            panic!()
        };
        assert_eq!(r.stream, "public-items");
        assert_eq!(r.record, br#"{"id": 1}"#);
        assert_eq!(r.meta.time_extracted, Some(&b"2020-01-01T00:00:00Z"[..]));
        let l = br#"{"type":"RECORD","stream":"s","record":{"id":1},"version":1700000000123}"#;
        let Line::Record(r) = parse_line(l).unwrap() else {
            panic!()
        };
        assert_eq!(r.meta.version, Some(1_700_000_000_123));
        let l = br#"{"type":"SCHEMA","stream":"s","schema":{"type":"object","properties":{}},"key_properties":["id"]}"#;
        assert!(matches!(parse_line(l).unwrap(), Line::Schema(m) if m.key_properties == ["id"]));
        assert!(
            matches!(parse_line(br#"{"type":"STATE","value":{"a":1}}"#).unwrap(), Line::State(v) if v["a"] == 1)
        );
        assert!(
            matches!(parse_line(br#"{"type":"LOG","message":"hi"}"#).unwrap(), Line::Ignored(t) if t == "LOG")
        );
        assert!(matches!(
            parse_line(br#"{"type":"ACTIVATE_VERSION","stream":"s","version":3}"#).unwrap(),
            Line::ActivateVersion { version: 3, .. }
        ));
    }

    #[test]
    fn reports_bad_lines() {
        assert!(matches!(
            parse_line(br#"{"type":"RECORD","stream":"s","record":{"id": 1"#),
            Err(SingerError::Syntax(_))
        ));
        assert!(matches!(
            parse_line(b"{\"type\":\"RECORD\",\"stream\":\"s\",\"record\":{\"a\":\"\xff\"}}"),
            Err(SingerError::NotUtf8(_))
        ));
        assert!(matches!(
            parse_line(br#"{"type":"RECORD","record":{}}"#),
            Err(SingerError::Missing { key: "stream", .. })
        ));
        assert!(matches!(parse_line(br#"[1]"#), Err(SingerError::NoType)));
    }
}
