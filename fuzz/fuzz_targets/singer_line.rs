//! The Singer line parser and the RECORD fast path on arbitrary bytes: no
//! panic, and the fast path agrees with the full parser on what a RECORD is.
#![no_main]

use inlet::singer::{self, Line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = singer::parse_line(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some((stream, mut sc)) = singer::record_head(text) {
        // the record object, then the rest of the envelope
        let whole = sc.skip_value().and_then(|_| singer::record_tail(&mut sc));
        if whole.is_ok() {
            // what the fast path accepts, the full parser reads as the same RECORD
            match &parsed {
                Ok(Line::Record(r)) => assert_eq!(r.stream, stream),
                other => panic!("fast path took a line the parser reads as {other:?}"),
            }
        }
    }
});
