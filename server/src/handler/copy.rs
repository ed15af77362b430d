//! `COPY (SELECT ...) TO STDOUT` and `COPY view TO STDOUT`: a read whose
//! rows go to the client as COPY data, in PostgreSQL's text or CSV format
//! (with `HEADER`, `DELIMITER`, `NULL`, `QUOTE`). What `psql`'s `\copy ... to`,
//! psycopg's `copy()` and psycopg2's `copy_expert` send. COPY into Eddy
//! (`FROM STDIN`) and to files is refused: views are written by their
//! sources.

use common::{Column, Row, SqlState, Value};
use sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Statement as Ast,
};

use crate::error::Error;

/// How rows are written.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyFormat {
    pub csv: bool,
    pub header: bool,
    pub delimiter: char,
    pub null: String,
    pub quote: char,
}

impl Default for CopyFormat {
    fn default() -> Self {
        CopyFormat {
            csv: false,
            header: false,
            delimiter: '\t',
            null: "\\N".into(),
            quote: '"',
        }
    }
}

fn refuse(what: &str, hint: &str) -> Error {
    Error::Query {
        code: SqlState::FeatureNotSupported,
        message: format!("{what} is not supported"),
        hint: Some(hint.to_owned()),
    }
}

/// For a `COPY ... TO STDOUT`, the SELECT it reads and its format; `None`
/// for any other statement.
pub fn parse(stmt: &Ast) -> Option<Result<(String, CopyFormat), Error>> {
    let Ast::Copy {
        source,
        to,
        target,
        options,
        legacy_options,
        ..
    } = stmt
    else {
        return None;
    };
    Some(parse_copy(source, *to, target, options, legacy_options))
}

fn parse_copy(
    source: &CopySource,
    to: bool,
    target: &CopyTarget,
    options: &[CopyOption],
    legacy: &[CopyLegacyOption],
) -> Result<(String, CopyFormat), Error> {
    if !to {
        return Err(Error::Plan(planner::PlanError::ReadOnly {
            statement: "COPY FROM".into(),
        }));
    }
    if !matches!(target, CopyTarget::Stdout) {
        return Err(refuse(
            "COPY to a file or program",
            "use COPY ... TO STDOUT (psql: \\copy ... to 'file')",
        ));
    }
    let query = match source {
        CopySource::Query(q) => q.to_string(),
        CopySource::Table {
            table_name,
            columns,
        } => {
            let list = if columns.is_empty() {
                "*".to_owned()
            } else {
                columns
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!("SELECT {list} FROM {table_name}")
        }
    };
    let mut format = CopyFormat::default();
    let csv_defaults = |f: &mut CopyFormat| {
        f.csv = true;
        f.delimiter = ',';
        f.null = String::new();
    };
    for o in options {
        match o {
            CopyOption::Format(f) if f.value.eq_ignore_ascii_case("csv") => {
                csv_defaults(&mut format)
            }
            CopyOption::Format(f) if f.value.eq_ignore_ascii_case("text") => {}
            CopyOption::Format(f) => {
                return Err(refuse(
                    &format!("COPY format {}", f.value),
                    "use FORMAT text or FORMAT csv",
                ))
            }
            CopyOption::Header(h) => format.header = *h,
            CopyOption::Delimiter(d) => format.delimiter = *d,
            CopyOption::Null(n) => format.null = n.clone(),
            CopyOption::Quote(q) => format.quote = *q,
            CopyOption::Encoding(e)
                if e.eq_ignore_ascii_case("utf8") || e.eq_ignore_ascii_case("utf-8") => {}
            other => return Err(refuse(
                &format!("COPY option {other}"),
                "COPY TO STDOUT takes FORMAT, HEADER, DELIMITER, NULL, QUOTE and ENCODING 'UTF8'",
            )),
        }
    }
    for o in legacy {
        match o {
            CopyLegacyOption::Csv(csv) => {
                csv_defaults(&mut format);
                for c in csv {
                    match c {
                        CopyLegacyCsvOption::Header => format.header = true,
                        CopyLegacyCsvOption::Quote(q) => format.quote = *q,
                        other => {
                            return Err(refuse(
                                &format!("COPY option {other}"),
                                "use CSV [HEADER] [QUOTE 'c']",
                            ))
                        }
                    }
                }
            }
            CopyLegacyOption::Header => format.header = true,
            CopyLegacyOption::Delimiter(d) => format.delimiter = *d,
            CopyLegacyOption::Null(n) => format.null = n.clone(),
            CopyLegacyOption::Binary => {
                return Err(refuse(
                    "COPY in binary format",
                    "use FORMAT text or FORMAT csv",
                ))
            }
            other => {
                return Err(refuse(
                    &format!("COPY option {other}"),
                    "use WITH CSV HEADER or (FORMAT csv, HEADER)",
                ))
            }
        }
    }
    Ok((query, format))
}

/// The COPY data of `rows`: one message per row, the header (if any) in
/// front of the first row's line, so the messages count the rows.
pub fn lines(format: &CopyFormat, columns: &[Column], rows: &[Row]) -> Vec<String> {
    let mut out = Vec::with_capacity(rows.len() + 1);
    let mut header = String::new();
    if format.header {
        let names: Vec<Option<String>> = columns.iter().map(|c| Some(c.name.clone())).collect();
        header = line(format, &names);
    }
    for row in rows {
        let texts: Vec<Option<String>> = row
            .iter()
            .map(|v| match v {
                Value::Null => None,
                v => v.to_pg_text(),
            })
            .collect();
        out.push(line(format, &texts));
    }
    match out.first_mut() {
        Some(first) => first.insert_str(0, &header),
        None if !header.is_empty() => out.push(header),
        None => {}
    }
    out
}

fn line(format: &CopyFormat, fields: &[Option<String>]) -> String {
    let mut out = String::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(format.delimiter);
        }
        match field {
            None => out.push_str(&format.null),
            Some(t) if format.csv => out.push_str(&csv_field(format, t)),
            Some(t) => text_field(t, format.delimiter, &mut out),
        }
    }
    out.push('\n');
    out
}

/// A value in COPY text format: backslash escapes for the delimiter,
/// backslash and control characters.
fn text_field(t: &str, delimiter: char, out: &mut String) {
    for c in t.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' if delimiter == '\t' => out.push_str("\\t"),
            c if c == delimiter => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

/// A value in CSV: quoted when it holds the delimiter, the quote, a line
/// break, or is empty or equal to the NULL string (so it reads back as a
/// value, not NULL).
fn csv_field(format: &CopyFormat, t: &str) -> String {
    let quote = t.is_empty()
        || t == format.null
        || t.contains(format.delimiter)
        || t.contains(format.quote)
        || t.contains('\n')
        || t.contains('\r');
    if !quote {
        return t.to_owned();
    }
    let q = format.quote;
    let doubled = t.replace(q, &format!("{q}{q}"));
    format!("{q}{doubled}{q}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::SqlType;

    fn copy(sql: &str) -> (String, CopyFormat) {
        let stmt = planner::parse(sql).unwrap().pop().unwrap();
        parse(&stmt).unwrap().unwrap()
    }

    #[test]
    fn copy_statements_name_their_query_and_format() {
        let (q, f) = copy("COPY (SELECT * FROM revenue) TO STDOUT WITH CSV HEADER");
        assert_eq!(q, "SELECT * FROM revenue");
        assert!(f.csv && f.header && f.delimiter == ',');
        let (q, f) = copy("COPY revenue (customer, total) TO STDOUT (FORMAT csv, HEADER true)");
        assert_eq!(q, "SELECT customer, total FROM revenue");
        assert!(f.csv && f.header);
        let (_, f) = copy("COPY revenue TO STDOUT");
        assert_eq!(f, CopyFormat::default());
        let stmt = planner::parse("COPY revenue FROM STDIN")
            .unwrap()
            .pop()
            .unwrap();
        assert!(parse(&stmt).unwrap().is_err());
    }

    #[test]
    fn rows_are_written_as_postgresql_writes_them() {
        let columns = vec![
            Column::new("a", SqlType::Text),
            Column::new("b", SqlType::BigInt),
        ];
        let rows = vec![
            vec![Value::Text("x\ty\\z".into()), Value::Null],
            vec![Value::Text("say \"hi\", ok".into()), Value::Int(2)],
            vec![Value::Text(String::new()), Value::Int(3)],
        ];
        let text = lines(&CopyFormat::default(), &columns, &rows);
        assert_eq!(text[0], "x\\ty\\\\z\t\\N\n");
        let csv = CopyFormat {
            csv: true,
            header: true,
            delimiter: ',',
            null: String::new(),
            quote: '"',
        };
        let out = lines(&csv, &columns, &rows);
        assert_eq!(out.len(), 3, "the header rides with the first row");
        assert_eq!(out[0], "a,b\nx\ty\\z,\n");
        assert_eq!(out[1], "\"say \"\"hi\"\", ok\",2\n");
        assert_eq!(out[2], "\"\",3\n");
    }
}
