//! COPY's data formats: PostgreSQL's text format and CSV, read incrementally (rows arrive in
//! chunks of any size, cut anywhere) and written a row at a time.
//!
//! ```text
//! text:  1\tAnn\t\N\n          tab-separated, \N is NULL, backslash escapes (\t \n \\ \ooo \xhh)
//! csv:   1,"Ann, Jr.",\n       comma-separated, "quoted" fields may hold , " and newlines;
//!                              an unquoted empty field is NULL
//! ```
//!
//! Either format ends at the end of the data or at a line holding only `\.`. A record longer
//! than [`COPY_RECORD_BYTES_MAX`] is refused (54000) rather than buffered without bound.

use crate::ast::{CopyFormat, CopyOptions, ForceQuote};
use crate::error::{codes, Error, Result};
use crate::eval::to_text;
use crate::types::Value;

/// The longest record (line, or CSV record with quoted newlines) COPY FROM buffers, in bytes.
pub const COPY_RECORD_BYTES_MAX: usize = 32 << 20;

/// SQLSTATE 22P04 bad_copy_file_format.
const BAD_COPY_FILE_FORMAT: &str = "22P04";
/// SQLSTATE 22021 character_not_in_repertoire (invalid UTF-8).
const CHARACTER_NOT_IN_REPERTOIRE: &str = "22021";
/// SQLSTATE 54000 program_limit_exceeded.
const PROGRAM_LIMIT_EXCEEDED: &str = "54000";

/// COPY's options, checked and with the format's defaults filled in.
#[derive(Debug, Clone)]
pub struct Format {
    /// CSV (else text).
    pub csv: bool,
    /// The field separator.
    pub delimiter: u8,
    /// The text of a NULL.
    pub null: String,
    /// A header line comes first (skipped on input, written on output).
    pub header: bool,
    /// CSV's quote character.
    pub quote: u8,
    /// CSV's escape character inside quotes.
    pub escape: u8,
    /// Per column: always quote on output (CSV).
    pub force_quote: Vec<bool>,
    /// Per column: an unquoted NULL string is a value, not NULL (CSV input).
    pub force_not_null: Vec<bool>,
    /// Per column: a quoted NULL string is NULL too (CSV input).
    pub force_null: Vec<bool>,
}

fn one_byte(s: &str, what: &str) -> Result<u8> {
    match s.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(Error::new(codes::FEATURE_NOT_SUPPORTED, format!("COPY {what} must be a single one-byte character"))),
    }
}

impl Format {
    /// Checks `o` for a COPY of `columns` (the copied column names, in order), `from` STDIN
    /// or to STDOUT, with PostgreSQL's errors.
    pub fn resolve(o: &CopyOptions, columns: &[String], from: bool) -> Result<Format> {
        let csv = match o.format {
            CopyFormat::Text => false,
            CopyFormat::Csv => true,
            CopyFormat::Binary => {
                return Err(Error::new(codes::FEATURE_NOT_SUPPORTED, "COPY in binary format is not supported"))
            }
        };
        let invalid = |m: &str| Error::new(codes::INVALID_PARAMETER_VALUE, m.to_string());
        let unsupported = |m: &str| Error::new(codes::FEATURE_NOT_SUPPORTED, m.to_string());
        let delimiter = match &o.delimiter {
            Some(d) => one_byte(d, "delimiter")?,
            None if csv => b',',
            None => b'\t',
        };
        if delimiter == b'\n' || delimiter == b'\r' {
            return Err(invalid("COPY delimiter cannot be newline or carriage return"));
        }
        let null = o.null.clone().unwrap_or_else(|| if csv { String::new() } else { "\\N".into() });
        if null.contains(['\n', '\r']) {
            return Err(invalid("COPY null representation cannot use newline or carriage return"));
        }
        if !csv && b"\\.abcdefghijklmnopqrstuvwxyz0123456789".contains(&delimiter) {
            return Err(invalid(&format!("COPY delimiter cannot be \"{}\"", delimiter as char)));
        }
        if !csv && (o.quote.is_some() || o.escape.is_some()) {
            let what = if o.quote.is_some() { "quote" } else { "escape" };
            return Err(unsupported(&format!("COPY {what} available only in CSV mode")));
        }
        let quote = match &o.quote {
            Some(q) => one_byte(q, "quote")?,
            None => b'"',
        };
        let escape = match &o.escape {
            Some(e) => one_byte(e, "escape")?,
            None => quote,
        };
        if csv && delimiter == quote {
            return Err(invalid("COPY delimiter and quote must be different"));
        }
        if null.as_bytes().contains(&delimiter) {
            return Err(invalid("COPY delimiter must not appear in the NULL specification"));
        }
        if csv && null.as_bytes().contains(&quote) {
            return Err(invalid("CSV quote character must not appear in the NULL specification"));
        }
        let position = |names: &[String], what: &str| -> Result<Vec<bool>> {
            let mut flags = vec![false; columns.len()];
            for n in names {
                match columns.iter().position(|c| c == n) {
                    Some(i) => flags[i] = true,
                    None => {
                        return Err(Error::new(
                            codes::INVALID_COLUMN_REFERENCE,
                            format!("{what} column \"{n}\" not referenced by COPY"),
                        ))
                    }
                }
            }
            Ok(flags)
        };
        let force_quote = match &o.force_quote {
            ForceQuote::None => vec![false; columns.len()],
            _ if !csv => return Err(unsupported("COPY force quote available only in CSV mode")),
            _ if from => return Err(unsupported("COPY force quote only available using COPY TO")),
            ForceQuote::All => vec![true; columns.len()],
            ForceQuote::Columns(names) => position(names, "FORCE_QUOTE")?,
        };
        for (names, what) in [(&o.force_not_null, "force not null"), (&o.force_null, "force null")] {
            if !names.is_empty() && !csv {
                return Err(unsupported(&format!("COPY {what} available only in CSV mode")));
            }
            if !names.is_empty() && !from {
                return Err(unsupported(&format!("COPY {what} only available using COPY FROM")));
            }
        }
        let force_not_null = position(&o.force_not_null, "FORCE_NOT_NULL")?;
        let force_null = position(&o.force_null, "FORCE_NULL")?;
        Ok(Format { csv, delimiter, null, header: o.header, quote, escape, force_quote, force_not_null, force_null })
    }

    /// One output line (with its newline) for `values`.
    pub fn encode_row(&self, values: &[Value], out: &mut Vec<u8>) {
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                out.push(self.delimiter);
            }
            match to_text(v) {
                None => out.extend_from_slice(self.null.as_bytes()),
                Some(text) if self.csv => self.csv_field(&text, self.force_quote.get(i).copied().unwrap_or(false), out),
                Some(text) => self.text_field(&text, out),
            }
        }
        out.push(b'\n');
    }

    /// The header line: the column names.
    pub fn encode_header(&self, names: &[String], out: &mut Vec<u8>) {
        for (i, n) in names.iter().enumerate() {
            if i > 0 {
                out.push(self.delimiter);
            }
            if self.csv {
                self.csv_field(n, false, out);
            } else {
                self.text_field(n, out);
            }
        }
        out.push(b'\n');
    }

    fn text_field(&self, text: &str, out: &mut Vec<u8>) {
        for &b in text.as_bytes() {
            match b {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                0x0b => out.extend_from_slice(b"\\v"),
                b if b == self.delimiter => {
                    out.push(b'\\');
                    out.push(b);
                }
                b => out.push(b),
            }
        }
    }

    fn csv_field(&self, text: &str, force: bool, out: &mut Vec<u8>) {
        let bytes = text.as_bytes();
        let needs = force
            || text == self.null
            || text == "\\."
            || bytes.iter().any(|&b| b == self.delimiter || b == self.quote || b == b'\n' || b == b'\r')
            || (self.null.is_empty() && bytes.is_empty());
        if !needs {
            out.extend_from_slice(bytes);
            return;
        }
        out.push(self.quote);
        for &b in bytes {
            if b == self.quote || b == self.escape {
                out.push(self.escape);
            }
            out.push(b);
        }
        out.push(self.quote);
    }
}

/// Reads COPY FROM data fed in chunks, giving whole records as fields (None: NULL).
pub struct Decoder {
    format: Format,
    columns: usize,
    pending: Vec<u8>,
    /// The 1-based number of the next line (for error context).
    line: u64,
    /// The header line is still to be skipped.
    skip_header: bool,
    /// `\.` was seen: the rest of the data is ignored.
    ended: bool,
}

/// One decoded record.
pub struct Record {
    /// Its line number (the first line, for a CSV record over several).
    pub line: u64,
    /// Its fields.
    pub fields: Vec<Option<String>>,
}

impl Decoder {
    /// A decoder for records of `columns` fields.
    pub fn new(format: Format, columns: usize) -> Decoder {
        let skip_header = format.header;
        Decoder { format, columns, pending: Vec::new(), line: 1, skip_header, ended: false }
    }

    /// The number of the line being read (for error context).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Adds `data` and appends each record it completes to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<Record>) -> Result<()> {
        if self.ended {
            return Ok(());
        }
        self.pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(end) = self.record_end(start) {
            let (body_end, next) = end;
            let record = self.pending[start..body_end].to_vec();
            start = next;
            self.take(&record, out)?;
            if self.ended {
                self.pending.clear();
                return Ok(());
            }
        }
        self.pending.drain(..start);
        if self.pending.len() > COPY_RECORD_BYTES_MAX {
            return Err(Error::new(
                PROGRAM_LIMIT_EXCEEDED,
                format!("COPY record is longer than {COPY_RECORD_BYTES_MAX} bytes (COPY_RECORD_BYTES_MAX)"),
            ));
        }
        Ok(())
    }

    /// The end of the data: a last record without its newline.
    pub fn finish(&mut self, out: &mut Vec<Record>) -> Result<()> {
        if self.ended || self.pending.is_empty() {
            return Ok(());
        }
        let record = std::mem::take(&mut self.pending);
        if self.format.csv && self.in_quotes(&record) {
            return Err(Error::new(BAD_COPY_FILE_FORMAT, "unterminated CSV quoted field"));
        }
        let record = record.strip_suffix(b"\r").unwrap_or(&record).to_vec();
        self.take(&record, out)
    }

    /// Where the record starting at `start` ends: (end of its text, start of the next), or
    /// None if it is not complete yet.
    fn record_end(&self, start: usize) -> Option<(usize, usize)> {
        let buf = &self.pending[start..];
        let mut in_quotes = false;
        let mut i = 0;
        while i < buf.len() {
            let b = buf[i];
            if self.format.csv && in_quotes {
                if b == self.format.escape && self.format.escape != self.format.quote {
                    if i + 1 < buf.len() && (buf[i + 1] == self.format.quote || buf[i + 1] == self.format.escape) {
                        i += 2;
                        continue;
                    }
                } else if b == self.format.quote {
                    in_quotes = false;
                }
            } else if self.format.csv && b == self.format.quote {
                in_quotes = true;
            } else if !self.format.csv && b == b'\\' {
                i += 2;
                continue;
            } else if b == b'\n' {
                return Some((start + i, start + i + 1));
            } else if b == b'\r' {
                if i + 1 == buf.len() {
                    return None; // a \n may follow in the next chunk
                }
                let next = if buf[i + 1] == b'\n' { i + 2 } else { i + 1 };
                return Some((start + i, start + next));
            }
            i += 1;
        }
        None
    }

    fn in_quotes(&self, record: &[u8]) -> bool {
        let mut in_quotes = false;
        let mut i = 0;
        while i < record.len() {
            let b = record[i];
            if in_quotes && b == self.format.escape && self.format.escape != self.format.quote {
                i += 2;
                continue;
            }
            if b == self.format.quote {
                in_quotes = !in_quotes;
            }
            i += 1;
        }
        in_quotes
    }

    fn take(&mut self, record: &[u8], out: &mut Vec<Record>) -> Result<()> {
        let line = self.line;
        self.line += 1 + record.iter().filter(|&&b| b == b'\n').count() as u64;
        if record == b"\\." {
            self.ended = true;
            return Ok(());
        }
        if self.skip_header {
            self.skip_header = false;
            return Ok(());
        }
        let fields = if self.format.csv { self.csv_fields(record)? } else { self.text_fields(record)? };
        if fields.len() < self.columns {
            return Err(Error::new(BAD_COPY_FILE_FORMAT, format!("missing data for column #{}", fields.len() + 1)));
        }
        if fields.len() > self.columns {
            return Err(Error::new(BAD_COPY_FILE_FORMAT, "extra data after last expected column"));
        }
        out.push(Record { line, fields });
        Ok(())
    }

    fn text_fields(&self, record: &[u8]) -> Result<Vec<Option<String>>> {
        let mut fields = Vec::new();
        let mut raw_start = 0;
        let mut field = Vec::new();
        let mut i = 0;
        loop {
            if i == record.len() || record[i] == self.format.delimiter {
                let raw = &record[raw_start..i];
                fields.push(if raw == self.format.null.as_bytes() {
                    None
                } else {
                    Some(utf8(std::mem::take(&mut field))?)
                });
                field.clear();
                if i == record.len() {
                    return Ok(fields);
                }
                i += 1;
                raw_start = i;
                continue;
            }
            let b = record[i];
            if b != b'\\' {
                field.push(b);
                i += 1;
                continue;
            }
            let Some(&c) = record.get(i + 1) else {
                field.push(b'\\');
                i += 1;
                continue;
            };
            i += 2;
            match c {
                b'b' => field.push(0x08),
                b'f' => field.push(0x0c),
                b'n' => field.push(b'\n'),
                b'r' => field.push(b'\r'),
                b't' => field.push(b'\t'),
                b'v' => field.push(0x0b),
                b'0'..=b'7' => {
                    let mut v = u32::from(c - b'0');
                    for _ in 0..2 {
                        match record.get(i) {
                            Some(&d @ b'0'..=b'7') => {
                                v = v * 8 + u32::from(d - b'0');
                                i += 1;
                            }
                            _ => break,
                        }
                    }
                    field.push((v & 0xff) as u8);
                }
                b'x' if record.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                    let mut v = 0u32;
                    for _ in 0..2 {
                        match record.get(i) {
                            Some(d) if d.is_ascii_hexdigit() => {
                                v = v * 16 + (*d as char).to_digit(16).unwrap_or(0);
                                i += 1;
                            }
                            _ => break,
                        }
                    }
                    field.push(v as u8);
                }
                other => field.push(other),
            }
        }
    }

    fn csv_fields(&self, record: &[u8]) -> Result<Vec<Option<String>>> {
        let f = &self.format;
        let mut fields = Vec::new();
        let mut i = 0;
        loop {
            let column = fields.len();
            let mut field = Vec::new();
            let mut quoted = false;
            let start = i;
            while i < record.len() && record[i] != f.delimiter {
                let b = record[i];
                if b != f.quote {
                    field.push(b);
                    i += 1;
                    continue;
                }
                quoted = true;
                i += 1;
                loop {
                    let Some(&c) = record.get(i) else {
                        return Err(Error::new(BAD_COPY_FILE_FORMAT, "unterminated CSV quoted field"));
                    };
                    let next = record.get(i + 1).copied();
                    let escaped = next == Some(f.quote) || (f.escape != f.quote && next == Some(f.escape));
                    if c == f.escape && escaped {
                        field.push(record[i + 1]);
                        i += 2;
                        continue;
                    }
                    if c == f.quote {
                        i += 1;
                        break;
                    }
                    field.push(c);
                    i += 1;
                }
            }
            let raw = &record[start..i];
            let is_null = if quoted {
                f.force_null.get(column).copied().unwrap_or(false) && field == f.null.as_bytes()
            } else {
                raw == f.null.as_bytes() && !f.force_not_null.get(column).copied().unwrap_or(false)
            };
            fields.push(if is_null { None } else { Some(utf8(field)?) });
            if i >= record.len() {
                return Ok(fields);
            }
            i += 1; // the delimiter
        }
    }
}

fn utf8(bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        let bad = e.as_bytes()[e.utf8_error().valid_up_to()];
        Error::new(CHARACTER_NOT_IN_REPERTOIRE, format!("invalid byte sequence for encoding \"UTF8\": 0x{bad:02x}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(csv: bool) -> Format {
        let o = CopyOptions { format: if csv { CopyFormat::Csv } else { CopyFormat::Text }, ..CopyOptions::default() };
        Format::resolve(&o, &["a".into(), "b".into(), "c".into()], true).unwrap()
    }

    /// Feeds `data` cut at every position into two chunks, checking each cut decodes alike.
    fn decode(csv: bool, data: &[u8]) -> Result<Vec<Vec<Option<String>>>> {
        let mut whole = None;
        for cut in 0..=data.len() {
            let mut d = Decoder::new(format(csv), 3);
            let mut out = Vec::new();
            let r = d.feed(&data[..cut], &mut out).and_then(|_| d.feed(&data[cut..], &mut out));
            let r = r.and_then(|_| d.finish(&mut out));
            let fields: Result<Vec<_>> = r.map(|_| out.into_iter().map(|r| r.fields).collect());
            match &whole {
                None => whole = Some(fields),
                Some(w) => assert_eq!(
                    format!("{w:?}"),
                    format!("{fields:?}"),
                    "cut at {cut} of {:?}",
                    String::from_utf8_lossy(data)
                ),
            }
        }
        whole.unwrap()
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn text_format_reads_escapes_nulls_and_the_end_marker() {
        let rows = decode(false, b"1\tAnn\t\\N\n2\ta\\tb\\\\c\\n\t\\101\\x42\r\n3\t\t\\.x\n\\.\nignored\n").unwrap();
        assert_eq!(
            rows,
            vec![vec![s("1"), s("Ann"), None], vec![s("2"), s("a\tb\\c\n"), s("AB")], vec![s("3"), s(""), s(".x")],]
        );
    }

    #[test]
    fn csv_reads_quotes_embedded_newlines_and_empty_as_null() {
        let rows = decode(true, b"1,\"x, \"\"y\"\"\",\n2,\"two\nlines\",\"\"\n3,c,d").unwrap();
        assert_eq!(
            rows,
            vec![vec![s("1"), s("x, \"y\""), None], vec![s("2"), s("two\nlines"), s("")], vec![s("3"), s("c"), s("d")]]
        );
    }

    #[test]
    fn wrong_field_counts_and_bad_bytes_are_errors() {
        assert_eq!(decode(false, b"1\t2\n").unwrap_err().code, BAD_COPY_FILE_FORMAT);
        assert_eq!(decode(false, b"1\t2\t3\t4\n").unwrap_err().code, BAD_COPY_FILE_FORMAT);
        assert_eq!(decode(true, b"1,\"open,3\n").unwrap_err().code, BAD_COPY_FILE_FORMAT);
        assert_eq!(decode(false, b"1\t\xff\t3\n").unwrap_err().code, CHARACTER_NOT_IN_REPERTOIRE);
    }

    #[test]
    fn output_round_trips_through_input() {
        let values = vec![Value::Int4(7), Value::Text("tab\there, \"q\"\nback\\slash".into()), Value::Null];
        for csv in [false, true] {
            let f = format(csv);
            let mut out = Vec::new();
            f.encode_row(&values, &mut out);
            let rows = decode(csv, &out).unwrap();
            assert_eq!(rows, vec![vec![s("7"), s("tab\there, \"q\"\nback\\slash"), None]], "csv={csv}");
        }
    }

    #[test]
    fn options_are_checked() {
        let cols = ["a".to_string()];
        let text_quote = CopyOptions { quote: Some("'".into()), ..CopyOptions::default() };
        assert_eq!(Format::resolve(&text_quote, &cols, true).unwrap_err().code, codes::FEATURE_NOT_SUPPORTED);
        let long_delim = CopyOptions { delimiter: Some("ab".into()), ..CopyOptions::default() };
        assert!(Format::resolve(&long_delim, &cols, true).is_err());
        let same = CopyOptions { format: CopyFormat::Csv, delimiter: Some("\"".into()), ..CopyOptions::default() };
        assert_eq!(Format::resolve(&same, &cols, true).unwrap_err().code, codes::INVALID_PARAMETER_VALUE);
        let binary = CopyOptions { format: CopyFormat::Binary, ..CopyOptions::default() };
        assert_eq!(Format::resolve(&binary, &cols, true).unwrap_err().code, codes::FEATURE_NOT_SUPPORTED);
    }
}
