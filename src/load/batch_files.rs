//! BATCH messages (Meltano SDK): records in local files listed in a manifest,
//! as JSONL (optionally gzipped) or Parquet. Every record goes through the
//! same decoding and validation as a RECORD line.

use std::io::Read;

use crate::singer::BatchMessage;

/// Reads each manifest file as JSON lines: `(uri, bytes)`.
pub fn read_manifest(m: &BatchMessage) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    for uri in &m.manifest {
        let path = uri
            .strip_prefix("file://")
            .ok_or_else(|| format!("BATCH manifest entry '{uri}' is not a file:// URI; only local batch files are supported"))?;
        let raw = std::fs::read(path).map_err(|e| format!("cannot read BATCH file {path}: {e}"))?;
        let gz =
            m.encoding.compression.as_deref() == Some("gzip") || raw.starts_with(&[0x1f, 0x8b]);
        let data = match m.encoding.format.to_ascii_lowercase().as_str() {
            "jsonl" => {
                if gz {
                    let mut s = Vec::new();
                    flate2::read::MultiGzDecoder::new(&raw[..])
                        .read_to_end(&mut s)
                        .map_err(|e| format!("cannot gunzip BATCH file {path}: {e}"))?;
                    s
                } else {
                    raw
                }
            }
            "parquet" => parquet_as_jsonl(raw)
                .map_err(|e| format!("cannot read BATCH file {path} as Parquet: {e}"))?,
            other => {
                return Err(format!(
                    "BATCH encoding format '{other}' is not supported; use jsonl or parquet"
                ));
            }
        };
        out.push((uri.clone(), data));
    }
    Ok(out)
}

fn parquet_as_jsonl(raw: Vec<u8>) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(raw),
    )?
    .build()?;
    let mut out = Vec::new();
    let mut w = arrow_json::LineDelimitedWriter::new(&mut out);
    for b in reader {
        w.write(&b?)?;
    }
    w.finish()?;
    drop(w);
    Ok(out)
}
