//! SQL text → sqlparser statements, with Eddy's own commands.
//!
//! sqlparser (PostgreSqlDialect) does not know `CREATE SOURCE` or
//! `DROP SOURCE`. Rather than rewriting the text (which would shift error
//! positions), the statement loop spots them by their first two tokens and
//! drives sqlparser's own sub-parsers:
//! - `CREATE SOURCE ...` is parsed as the rest of a `CREATE TABLE` and marked
//!   with `external = true` (Postgres has no external tables, and a source is
//!   one: its rows live in Kafka);
//! - `DROP SOURCE ...` becomes `DROP STREAM ...` (sources are streams);
//! - `CREATE USER` and `ALTER USER` are PostgreSQL's `CREATE ROLE ... LOGIN`
//!   and `ALTER ROLE` (sqlparser reads them as Snowflake's statements).
//!
//! Everything else goes through `Parser::parse_statement` unchanged.

use crate::error::PlanError;
use sqlparser::ast::{ObjectType, Statement as Ast};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token};

/// Parses one or more `;`-separated statements.
///
/// Statements past the limits of [`super::limits`] are refused with 54001
/// before they are planned.
pub fn parse(sql: &str) -> Result<Vec<Ast>, PlanError> {
    super::limits::check_tokens(sql)?;
    let dialect = PostgreSqlDialect {};
    let err = |e| syntax_error(sql, e);
    let mut parser = Parser::new(&dialect).try_with_sql(sql).map_err(err)?;
    let mut out = Vec::new();
    let mut expecting_delimiter = false;
    loop {
        while parser.consume_token(&Token::SemiColon) {
            expecting_delimiter = false;
        }
        if parser.peek_token_ref().token == Token::EOF {
            break;
        }
        if expecting_delimiter {
            let found = parser.peek_token();
            return Err(err(ParserError::ParserError(format!(
                "Expected: end of statement, found: {}{}",
                found.token, found.span.start
            ))));
        }
        let stmt = if leads_with(&parser, Keyword::CREATE, "source") {
            parser.next_token();
            parser.next_token();
            let mut table = parser
                .parse_create_table(false, false, None, false)
                .map_err(err)?;
            table.external = true;
            Ast::CreateTable(table)
        } else if leads_with(&parser, Keyword::DROP, "source") {
            parser.next_token();
            parser.next_token();
            let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
            let names = parser
                .parse_comma_separated(|p| p.parse_object_name(false))
                .map_err(err)?;
            let cascade = parser.parse_keyword(Keyword::CASCADE);
            let restrict = !cascade && parser.parse_keyword(Keyword::RESTRICT);
            Ast::Drop {
                object_type: ObjectType::Stream,
                if_exists,
                names,
                cascade,
                restrict,
                purge: false,
                temporary: false,
                table: None,
            }
        } else if leads_with(&parser, Keyword::CREATE, "user") {
            parser.next_token();
            parser.next_token();
            let mut role = parser.parse_create_role().map_err(err)?;
            role.login.get_or_insert(true);
            Ast::CreateRole(role)
        } else if leads_with(&parser, Keyword::ALTER, "user") {
            parser.next_token();
            parser.next_token();
            parser.parse_alter_role().map_err(err)?
        } else {
            parser.parse_statement().map_err(err)?
        };
        super::limits::check_depth(&stmt)?;
        out.push(stmt);
        expecting_delimiter = true;
    }
    Ok(out)
}

fn leads_with(parser: &Parser<'_>, first: Keyword, second: &str) -> bool {
    let is_first =
        matches!(&parser.peek_nth_token_ref(0).token, Token::Word(w) if w.keyword == first);
    let is_second = matches!(&parser.peek_nth_token_ref(1).token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(second));
    is_first && is_second
}

/// A sqlparser error as a 42601 with a 1-based character position.
pub(crate) fn syntax_error(sql: &str, e: ParserError) -> PlanError {
    let text = match e {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
        ParserError::RecursionLimitExceeded => "statement is nested too deeply".to_owned(),
    };
    let (message, position) = match text.rfind(" at Line: ") {
        Some(at) => {
            let loc = &text[at + " at Line: ".len()..];
            let mut parts = loc.split(", Column: ");
            let line = parts.next().and_then(|l| l.trim().parse().ok());
            let column = parts.next().and_then(|c| c.trim().parse().ok());
            let position = match (line, column) {
                (Some(line), Some(column)) => position_of(sql, Location { line, column }),
                _ => None,
            };
            (text[..at].to_owned(), position)
        }
        // No location: the parser ran out of input.
        None => {
            let end = sql.trim_end().trim_end_matches(';').trim_end();
            (
                text.replace("found: EOF", "found: end of input"),
                Some(end.chars().count() as u32 + 1),
            )
        }
    };
    PlanError::Syntax { message, position }
}

/// The 1-based character offset of a sqlparser location in `sql`.
pub fn position_of(sql: &str, loc: Location) -> Option<u32> {
    if loc.line == 0 {
        return None;
    }
    let (mut line, mut column) = (1u64, 1u64);
    for (i, c) in sql.chars().enumerate() {
        if line == loc.line && column == loc.column {
            return u32::try_from(i + 1).ok();
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line == loc.line && column == loc.column).then(|| sql.chars().count() as u32 + 1)
}

/// The byte offset of a sqlparser location in `sql`.
pub(crate) fn byte_offset_of(sql: &str, loc: Location) -> Option<usize> {
    let chars = position_of(sql, loc)? as usize - 1;
    Some(sql.char_indices().nth(chars).map_or(sql.len(), |(b, _)| b))
}
