//! Decoding records of one stream into column builders: the part of a
//! stream buffer that a decoding thread can own (see `load::parallel`).

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_schema::{ArrowError, SchemaRef};

use super::columns::{Column, Validity};
use super::decode::{Decoder, RecordError};
use crate::scan::{Scanner, SyntaxError};
use crate::schema::StreamSchema;
use crate::schema::values::{DateCache, parse_timestamp_us_with};
use crate::singer::RecordMeta;

/// What a decoder of one stream needs; shared by every decoding thread.
#[derive(Debug)]
pub struct RowSpec {
    /// Stream name (for warnings).
    pub stream: String,
    /// Compiled schema.
    pub schema: Arc<StreamSchema>,
    /// Arrow schema of sealed batches: data, two stamps, then the optional
    /// `_sdc_extracted_at` and `_sdc_table_version`.
    pub arrow: SchemaRef,
    /// Keep `time_extracted` as a column.
    pub extracted: bool,
    /// Keep the RECORD `version` as a column.
    pub versions: bool,
    /// Check constraints (`validate_records`).
    pub validate: bool,
    /// Undeclared properties already warned about (by any thread).
    pub warned: std::sync::Mutex<HashSet<Vec<u8>>>,
}

/// Column builders for the rows of one stream decoded since the last
/// [`RowDecoder::finish`].
pub struct RowDecoder {
    spec: Arc<RowSpec>,
    cols: Vec<Column>,
    extracted: Option<Column>,
    /// The day of the last `time_extracted`.
    extracted_day: DateCache,
    versions: Option<Column>,
    rows: usize,
    decoder: Decoder,
    unknown_seen: HashSet<Vec<u8>>,
}

impl RowDecoder {
    /// Empty builders for `spec`.
    pub fn new(spec: Arc<RowSpec>) -> Self {
        let i64_col = || Column::I64(Vec::new(), Validity::default());
        RowDecoder {
            cols: spec
                .schema
                .root
                .fields
                .iter()
                .map(Column::for_plan)
                .collect(),
            extracted: spec.extracted.then(i64_col),
            extracted_day: DateCache::default(),
            versions: spec.versions.then(i64_col),
            rows: 0,
            decoder: Decoder::new(spec.validate),
            unknown_seen: HashSet::new(),
            spec,
        }
    }

    /// The spec these builders follow.
    pub fn spec(&self) -> &Arc<RowSpec> {
        &self.spec
    }

    /// Rows decoded since the last [`RowDecoder::finish`].
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Decodes the record object at the scanner's cursor (single pass over
    /// the line); `tail` reads the rest of the line and returns its
    /// `time_extracted` and `version`. On error nothing of the record stays.
    pub(crate) fn push_from<'a>(
        &mut self,
        sc: &mut Scanner<'a>,
        tail: impl FnOnce(&mut Scanner<'a>) -> Result<RecordMeta<'a>, SyntaxError>,
    ) -> Result<(), RecordError> {
        let spec = &self.spec;
        let seen = &mut self.unknown_seen;
        let mut unknown = |k: &[u8]| {
            // this decoder's own set first: the shared one is locked once per key
            if seen.len() < 100 && seen.insert(k.to_vec()) {
                let first = spec
                    .warned
                    .lock()
                    .map(|mut w| w.len() < 100 && w.insert(k.to_vec()))
                    .unwrap_or(false);
                if first {
                    tracing::warn!(stream = %spec.stream, "records have property '{}' that the SCHEMA does not declare; it is not written", String::from_utf8_lossy(k));
                }
            }
        };
        let start = sc.peek().map(|_| sc.pos()).unwrap_or(0);
        let res = self
            .decoder
            .record(
                sc,
                &self.spec.schema.root,
                &mut self.cols,
                self.rows,
                &mut unknown,
            )
            .and_then(|_| {
                let end = sc.pos();
                let te = tail(sc)?;
                full_check(&self.spec.schema, &sc.input()[start..end])?;
                Ok(te)
            });
        let meta = match res {
            Ok(m) => m,
            Err(e) => {
                for c in &mut self.cols {
                    c.truncate(self.rows);
                }
                return Err(e);
            }
        };
        if let Some(Column::I64(d, v)) = &mut self.extracted {
            let day = &mut self.extracted_day;
            match meta
                .time_extracted
                .and_then(|t| parse_timestamp_us_with(t, day))
            {
                Some(us) => {
                    d.push(us);
                    v.push(true)
                }
                None => {
                    d.push(0);
                    v.push(false)
                }
            }
        }
        if let Some(Column::I64(d, v)) = &mut self.versions {
            d.push(meta.version.unwrap_or(0));
            v.push(meta.version.is_some());
        }
        self.rows += 1;
        Ok(())
    }

    /// Hands the decoded rows over as arrays (data columns, then
    /// `_sdc_extracted_at` and `_sdc_table_version` when kept; the stamps are
    /// added when a batch is sealed) and starts empty again.
    pub fn finish(&mut self) -> Result<Vec<ArrayRef>, ArrowError> {
        let fields = self.spec.arrow.fields();
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(fields.len());
        for (c, f) in self.cols.iter_mut().zip(fields.iter()) {
            arrays.push(c.finish(f)?);
        }
        let tail = [&mut self.extracted, &mut self.versions];
        let n_tail = tail.iter().filter(|c| c.is_some()).count();
        let first = fields.len() - n_tail;
        for (at, c) in (first..).zip(tail.into_iter().flatten()) {
            arrays.push(c.finish(&fields[at])?);
        }
        self.rows = 0;
        Ok(arrays)
    }
}

/// Keywords beyond the fast checks, via the full validator.
fn full_check(schema: &StreamSchema, record: &[u8]) -> Result<(), RecordError> {
    let Some(v) = &schema.fallback else {
        return Ok(());
    };
    let value: serde_json::Value =
        serde_json::from_slice(record).map_err(|e| RecordError::Invalid {
            path: vec![],
            msg: e.to_string(),
        })?;
    match v.iter_errors(&value).next() {
        None => Ok(()),
        Some(e) => {
            let path = e.instance_path().to_string();
            let path = path.trim_start_matches('/').replace('/', ".");
            Err(RecordError::Invalid {
                path: if path.is_empty() { vec![] } else { vec![path] },
                msg: e.to_string(),
            })
        }
    }
}
