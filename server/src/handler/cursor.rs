//! `DECLARE`, `FETCH`, `MOVE` and `CLOSE`: SQL cursors over a read.
//!
//! `DECLARE` plans its query as any read (Eddy's planner, else DataFusion),
//! runs it once and keeps the rows in the session (see
//! [`crate::session::cursors`] for the position model and the transaction
//! rules). `DECLARE` and `CLOSE` come from sqlparser; `FETCH` and `MOVE`
//! are parsed here, because sqlparser knows no `MOVE` and wants `FROM` or
//! `IN` and a count where PostgreSQL does not.
//!
//! A query string with a `FETCH` or `MOVE` in it is cut into statements at
//! its semicolons first. Every other statement of it is parsed alone, but
//! from a copy of the whole text with the rest blanked out, so positions
//! in errors still count from the start of what the client sent.

use std::sync::Arc;

use common::{Column, SqlType, Value};
use sqlparser::ast::{self, CloseCursor, Ident};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use super::{command, Database, Planned};
use crate::error::Error;
use crate::session::cursors::{
    Count, CursorError, CursorName, CursorOptions, CursorRows, Direction, Scroll,
};
use crate::session::vars::SessionVars;
use crate::session::{Description, Outcome, WireError};
use futures::StreamExt;

/// One statement of a query string.
pub(super) enum Piece {
    /// Parsed by sqlparser; `text` is what its spans count in.
    Sql {
        ast: Box<ast::Statement>,
        text: Arc<str>,
    },
    Fetch(Fetch),
}

/// `FETCH` or `MOVE`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Fetch {
    name: CursorName,
    direction: Direction,
    /// `MOVE`: the rows are counted, not sent.
    discard: bool,
}

/// A cursor statement sqlparser parsed.
enum Command<'s> {
    Declare {
        name: CursorName,
        options: CursorOptions,
        query: &'s ast::Query,
    },
    Close(Option<CursorName>),
}

impl<'s> Command<'s> {
    fn of(stmt: &'s ast::Statement) -> Option<Command<'s>> {
        match stmt {
            ast::Statement::Declare { stmts } => {
                let [decl] = stmts.as_slice() else {
                    return None;
                };
                let ([name], Some(query)) = (decl.names.as_slice(), decl.for_query.as_deref())
                else {
                    return None;
                };
                let scroll = match decl.scroll {
                    Some(true) => Scroll::Scroll,
                    Some(false) => Scroll::NoScroll,
                    None => Scroll::Default,
                };
                Some(Command::Declare {
                    name: fold(name),
                    options: CursorOptions {
                        scroll,
                        hold: decl.hold == Some(true),
                        binary: decl.binary == Some(true),
                    },
                    query,
                })
            }
            ast::Statement::Close { cursor } => Some(Command::Close(match cursor {
                CloseCursor::All => None,
                CloseCursor::Specific { name } => Some(fold(name)),
            })),
            _ => None,
        }
    }
}

/// An identifier as PostgreSQL resolves it: unquoted folds to lower case.
fn fold(ident: &Ident) -> CursorName {
    CursorName(match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_ascii_lowercase(),
    })
}

/// Whether a one-statement query is a cursor statement (its first word,
/// past blanks and comments): Parse and Execute of the extended protocol
/// ask this before anything else, so it must stay cheap.
pub(super) fn leads_with_cursor_statement(sql: &str) -> bool {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(after) = rest.strip_prefix("/*") {
            // Nested comments are rare; a wrong guess only costs a parse.
            rest = after.split_once("*/").map_or("", |(_, r)| r);
        } else {
            break;
        }
    }
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .take(8)
        .collect();
    ["declare", "fetch", "move", "close"]
        .iter()
        .any(|k| word.eq_ignore_ascii_case(k))
}

/// The statements of a query string.
pub(super) fn split(sql: &str) -> Result<Vec<Piece>, Error> {
    let lower = sql.to_ascii_lowercase();
    if !lower.contains("fetch") && !lower.contains("move") {
        return whole(sql);
    }
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize_with_location() else {
        // planner::parse reports the tokenizer's error with its position.
        return whole(sql);
    };
    // In order: a FETCH / MOVE parsed here, or `None` for a statement
    // sqlparser parses; and where the former are, to blank them out.
    let mut order: Vec<Option<Fetch>> = Vec::new();
    let mut blanked: Vec<(Location, Option<Location>)> = Vec::new();
    let mut statement: Vec<&TokenWithSpan> = Vec::new();
    for token in tokens.iter().chain(std::iter::once(&END)) {
        match &token.token {
            Token::Whitespace(_) => continue,
            Token::SemiColon | Token::EOF => {}
            _ => {
                statement.push(token);
                continue;
            }
        }
        let end = (token.token == Token::SemiColon).then_some(token.span.start);
        if let Some(first) = statement.first() {
            if is_word(first, "fetch") || is_word(first, "move") {
                order.push(Some(
                    parse_fetch(&statement, end, sql).map_err(session_error)?,
                ));
                blanked.push((first.span.start, end));
            } else {
                order.push(None);
            }
        }
        statement.clear();
    }
    if blanked.is_empty() {
        return whole(sql);
    }
    let text: Arc<str> = blank(sql, &blanked).into();
    let mut parsed = planner::parse(&text)?.into_iter();
    let sqlparsers = order.iter().filter(|o| o.is_none()).count();
    if parsed.len() != sqlparsers {
        return Err(Error::internal(format!(
            "{} statements parsed where {sqlparsers} were expected",
            parsed.len()
        )));
    }
    Ok(order
        .into_iter()
        .filter_map(|piece| match piece {
            Some(fetch) => Some(Piece::Fetch(fetch)),
            None => parsed.next().map(|ast| Piece::Sql {
                ast: Box::new(ast),
                text: text.clone(),
            }),
        })
        .collect())
}

/// The end of input, which the tokenizer leaves implicit.
static END: TokenWithSpan = TokenWithSpan {
    token: Token::EOF,
    span: sqlparser::tokenizer::Span {
        start: Location { line: 0, column: 0 },
        end: Location { line: 0, column: 0 },
    },
};

fn whole(sql: &str) -> Result<Vec<Piece>, Error> {
    let stmts = planner::parse(sql)?;
    let text: Arc<str> = sql.into();
    Ok(stmts
        .into_iter()
        .map(|ast| Piece::Sql {
            ast: Box::new(ast),
            text: text.clone(),
        })
        .collect())
}

fn is_word(token: &TokenWithSpan, word: &str) -> bool {
    matches!(&token.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

/// `sql` with the characters of every `[from, to]` range (`to` is a
/// statement's semicolon, `None` the end) made blanks, line breaks kept, so
/// the other statements parse with their positions unchanged. `ranges` are
/// in order and apart.
fn blank(sql: &str, ranges: &[(Location, Option<Location>)]) -> String {
    let (mut line, mut column) = (1u64, 1u64);
    let mut ranges = ranges.iter().peekable();
    sql.chars()
        .map(|c| {
            let here = Location { line, column };
            while ranges
                .peek()
                .is_some_and(|(_, to)| to.is_some_and(|to| here > to))
            {
                ranges.next();
            }
            let inside = ranges.peek().is_some_and(|(from, _)| here >= *from);
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
            if inside && c != '\n' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// The 1-based character position of a tokenizer location in `sql` (past
/// its end when the location is not in it).
fn position_of(sql: &str, at: Location) -> Option<u32> {
    planner::position_of(sql, at).or_else(|| u32::try_from(sql.chars().count() + 1).ok())
}

/// `FETCH` / `MOVE` `[direction] [FROM | IN] name`, from its tokens
/// (blanks left out); `end` is where its semicolon is, if any.
fn parse_fetch(
    tokens: &[&TokenWithSpan],
    end: Option<Location>,
    sql: &str,
) -> Result<Fetch, CursorError> {
    let discard = tokens.first().is_some_and(|t| is_word(t, "move"));
    let syntax = |at: Option<&&TokenWithSpan>| match at {
        Some(t) => CursorError::Syntax {
            message: format!("syntax error at or near \"{}\"", t.token),
            position: position_of(sql, t.span.start),
        },
        None => CursorError::Syntax {
            message: "syntax error at end of input".to_owned(),
            position: match end {
                Some(end) => position_of(sql, end),
                None => u32::try_from(sql.trim_end().chars().count() + 1).ok(),
            },
        },
    };
    let mut i = 1;
    let word = |i: usize| -> Option<String> {
        match tokens.get(i).map(|t| &t.token) {
            Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        }
    };
    let starts_number = |i: usize| {
        matches!(
            tokens.get(i).map(|t| &t.token),
            Some(Token::Number(..) | Token::Minus | Token::Plus)
        )
    };
    // A signed 32-bit integer, as PostgreSQL's grammar takes.
    let number = |i: &mut usize| -> Result<i64, CursorError> {
        let negative = match tokens.get(*i).map(|t| &t.token) {
            Some(Token::Minus) => {
                *i += 1;
                true
            }
            Some(Token::Plus) => {
                *i += 1;
                false
            }
            _ => false,
        };
        let at = tokens.get(*i);
        let Some(Token::Number(digits, false)) = at.map(|t| &t.token) else {
            return Err(syntax(at));
        };
        let n: i64 = digits.parse::<i32>().map_err(|_| syntax(at))?.into();
        *i += 1;
        Ok(if negative { -n } else { n })
    };
    // `FETCH name`: a lone word is the cursor, whatever it spells.
    let direction = if tokens.len() == 2 {
        Direction::Forward(Count::Rows(1))
    } else {
        match word(i).as_deref() {
            Some(w @ ("NEXT" | "PRIOR" | "FIRST" | "LAST" | "ALL")) => {
                i += 1;
                match w {
                    "NEXT" => Direction::Forward(Count::Rows(1)),
                    "PRIOR" => Direction::Backward(Count::Rows(1)),
                    "FIRST" => Direction::Absolute(1),
                    "LAST" => Direction::Absolute(-1),
                    _ => Direction::Forward(Count::All),
                }
            }
            Some("ABSOLUTE") => {
                i += 1;
                Direction::Absolute(number(&mut i)?)
            }
            Some("RELATIVE") => {
                i += 1;
                Direction::Relative(number(&mut i)?)
            }
            Some(w @ ("FORWARD" | "BACKWARD")) => {
                i += 1;
                let forward = w == "FORWARD";
                if word(i).as_deref() == Some("ALL") {
                    i += 1;
                    if forward {
                        Direction::Forward(Count::All)
                    } else {
                        Direction::Backward(Count::All)
                    }
                } else if starts_number(i) {
                    let n = number(&mut i)?;
                    if forward {
                        Direction::forward_signed(n)
                    } else {
                        Direction::backward_signed(n)
                    }
                } else if forward {
                    Direction::Forward(Count::Rows(1))
                } else {
                    Direction::Backward(Count::Rows(1))
                }
            }
            _ if starts_number(i) => Direction::forward_signed(number(&mut i)?),
            _ => Direction::Forward(Count::Rows(1)),
        }
    };
    if matches!(word(i).as_deref(), Some("FROM" | "IN")) {
        i += 1;
    }
    let name = match tokens.get(i).map(|t| &t.token) {
        Some(Token::Word(w)) => CursorName(match w.quote_style {
            Some(_) => w.value.clone(),
            None => w.value.to_ascii_lowercase(),
        }),
        _ => return Err(syntax(tokens.get(i))),
    };
    if let Some(extra) = tokens.get(i + 1) {
        return Err(syntax(Some(extra)));
    }
    Ok(Fetch {
        name,
        direction,
        discard,
    })
}

fn session_error(e: CursorError) -> Error {
    Error::Session(WireError::from(e))
}

/// Runs a cursor statement; `None` when `piece` is not one.
pub(super) async fn run(
    db: &Database,
    vars: &mut SessionVars,
    piece: &Piece,
    params: &[Value],
) -> Option<Result<Outcome, Error>> {
    Some(match piece {
        Piece::Fetch(fetch) => run_fetch(vars, fetch).await,
        Piece::Sql { ast, text } => match Command::of(ast)? {
            Command::Declare {
                name,
                options,
                query,
            } => declare(db, vars, name, options, query, text, params).await,
            Command::Close(Some(name)) => vars
                .cursors_mut()
                .close(&name)
                .map(|()| command("CLOSE CURSOR"))
                .map_err(session_error),
            Command::Close(None) => {
                vars.cursors_mut().close_all();
                Ok(command("CLOSE CURSOR ALL"))
            }
        },
    })
}

async fn declare(
    db: &Database,
    vars: &mut SessionVars,
    name: CursorName,
    options: CursorOptions,
    query: &ast::Query,
    text: &str,
    params: &[Value],
) -> Result<Outcome, Error> {
    // The name and the transaction are checked before the query runs, as
    // PostgreSQL does.
    vars.cursors()
        .check_declare(&name, options)
        .map_err(session_error)?;
    let planned = plan(db, query, text).await?;
    // Read as far as its first batch now, and on as FETCHes need (each
    // FETCH within its own statement_timeout).
    let (columns, rows) = match db.run_opening(vars, &planned, params).await?.0 {
        Outcome::Rows { columns, rows } => (columns, CursorRows::all(rows)),
        Outcome::Stream { columns, rows } => {
            let mut rows = rows
                .take()
                .ok_or_else(|| Error::internal("a cursor's read was taken"))?;
            let first = match rows.next().await {
                Some(batch) => batch.map_err(Error::Session)?,
                None => Vec::new(),
            };
            (columns, CursorRows::reading(first, rows))
        }
        _ => return Err(Error::internal("the query of a cursor returned no rows")),
    };
    vars.cursors_mut()
        .declare(name, options, columns, rows)
        .map_err(session_error)?;
    Ok(command("DECLARE CURSOR"))
}

async fn plan(db: &Database, query: &ast::Query, text: &str) -> Result<Planned, Error> {
    let read = ast::Statement::Query(Box::new(query.clone()));
    db.plan_synced(|| db.plan_read(&read, text)).await
}

async fn run_fetch(vars: &mut SessionVars, fetch: &Fetch) -> Result<Outcome, Error> {
    let limit = vars.statement_timeout();
    let cursors = vars.cursors_mut();
    if !cursors.contains(&fetch.name) {
        // Perhaps a protocol-level portal, which only the wire layer has.
        return match fetch.direction {
            Direction::Forward(count) => Ok(Outcome::PortalFetch {
                name: fetch.name.0.clone(),
                count: match count {
                    Count::Rows(n) => Some(n),
                    Count::All => None,
                },
                discard: fetch.discard,
            }),
            _ => Err(session_error(CursorError::Unknown {
                name: fetch.name.clone(),
            })),
        };
    }
    let binary = cursors.is_binary(&fetch.name);
    let fetching = cursors.fetch(&fetch.name, fetch.direction, !fetch.discard);
    let fetched = if limit.is_zero() {
        fetching.await
    } else {
        tokio::time::timeout(limit, fetching)
            .await
            .map_err(|_| Error::StatementTimeout { limit })?
    }
    .map_err(session_error)?;
    Ok(if fetch.discard {
        Outcome::Command {
            tag: "MOVE".to_owned(),
            rows: Some(fetched.count),
        }
    } else {
        Outcome::Fetch {
            columns: fetched.columns,
            rows: fetched.rows,
            binary,
        }
    })
}

/// Describe of a cursor statement; `None` when `piece` is not one.
pub(super) async fn describe(
    db: &Database,
    vars: &SessionVars,
    piece: &Piece,
) -> Option<Result<Description, Error>> {
    let none = |params: Vec<SqlType>| Description {
        params,
        columns: None,
    };
    Some(match piece {
        Piece::Fetch(fetch) if fetch.discard => Ok(none(Vec::new())),
        // A cursor that does not exist (yet) describes as no rows; Execute
        // then says it does not exist, as PostgreSQL does.
        Piece::Fetch(fetch) => Ok(Description {
            params: Vec::new(),
            columns: vars.cursors().columns(&fetch.name).map(<[Column]>::to_vec),
        }),
        Piece::Sql { ast, text } => match Command::of(ast)? {
            Command::Declare { query, .. } => plan(db, query, text)
                .await
                .map(|planned| none(planned.params())),
            Command::Close(_) => Ok(none(Vec::new())),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> Result<Fetch, Error> {
        let mut pieces = split(sql)?;
        assert_eq!(pieces.len(), 1, "{sql}");
        match pieces.pop() {
            Some(Piece::Fetch(f)) => Ok(f),
            _ => panic!("not a FETCH: {sql}"),
        }
    }

    fn fetch(sql: &str) -> (String, Direction, bool) {
        let f = one(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        (f.name.0, f.direction, f.discard)
    }

    fn rows(n: u64) -> Direction {
        Direction::Forward(Count::Rows(n))
    }

    #[test]
    fn fetch_and_move_take_postgres_grammar() {
        use Direction::*;
        let cases = [
            ("FETCH c", ("c", rows(1), false)),
            ("fetch next from C", ("c", rows(1), false)),
            ("FETCH FORWARD 5 FROM \"BIG\"", ("BIG", rows(5), false)),
            (
                "FETCH FORWARD ALL FROM \"big\";",
                ("big", Forward(Count::All), false),
            ),
            ("FETCH FORWARD FROM c", ("c", rows(1), false)),
            ("FETCH BACKWARD c", ("c", Backward(Count::Rows(1)), false)),
            ("FETCH BACKWARD -2 IN c", ("c", rows(2), false)),
            ("FETCH -1 FROM c", ("c", Backward(Count::Rows(1)), false)),
            ("FETCH +3 c", ("c", rows(3), false)),
            ("FETCH ALL c", ("c", Forward(Count::All), false)),
            ("FETCH PRIOR c", ("c", Backward(Count::Rows(1)), false)),
            ("FETCH FIRST c", ("c", Absolute(1), false)),
            ("FETCH LAST c", ("c", Absolute(-1), false)),
            ("FETCH ABSOLUTE -2 c", ("c", Absolute(-2), false)),
            ("FETCH RELATIVE 0 c", ("c", Relative(0), false)),
            (
                "MOVE FORWARD 2 __asyncpg_portal_7__",
                ("__asyncpg_portal_7__", rows(2), true),
            ),
            ("/* x */ move c", ("c", rows(1), true)),
        ];
        for (sql, (name, direction, discard)) in cases {
            assert_eq!(fetch(sql), (name.to_owned(), direction, discard), "{sql}");
        }
    }

    #[test]
    fn bad_fetches_are_syntax_errors_at_the_right_place() {
        for (sql, message, position) in [
            ("FETCH c INTO x", "syntax error at or near \"INTO\"", 9),
            ("FETCH 1.5 FROM c", "syntax error at or near \"1.5\"", 7),
            (
                "FETCH FORWARD 99999999999 FROM c",
                "syntax error at or near \"99999999999\"",
                15,
            ),
            ("FETCH FROM", "syntax error at end of input", 11),
            ("SELECT 1; MOVE 'x'", "syntax error at or near \"'x'\"", 16),
        ] {
            let e = match one(sql) {
                Err(Error::Session(e)) => e,
                other => panic!("{sql}: {other:?}"),
            };
            assert_eq!(e.code, common::SqlState::SyntaxError, "{sql}");
            assert_eq!(
                (e.message.as_str(), e.position),
                (message, Some(position)),
                "{sql}"
            );
        }
    }

    #[test]
    fn other_statements_keep_their_positions() {
        let Err(e) = split("FETCH c; SELECT 1 + ;") else {
            panic!("parsed");
        };
        let e = WireError::from(e);
        assert_eq!(e.position, Some(21), "{e:?}");

        let pieces = split("BEGIN; DECLARE \"BIG\" CURSOR FOR SELECT 1; FETCH 2 \"BIG\"").unwrap();
        assert_eq!(pieces.len(), 3);
        assert!(matches!(&pieces[2], Piece::Fetch(f) if f.name.0 == "BIG"));
        let Piece::Sql { text, .. } = &pieces[0] else {
            panic!("BEGIN is sqlparser's");
        };
        let declared = "BEGIN; DECLARE \"BIG\" CURSOR FOR SELECT 1;";
        let blanks = " FETCH 2 \"BIG\"".len();
        assert_eq!(&**text, format!("{declared}{}", " ".repeat(blanks)));
        let Piece::Sql { ast, .. } = &pieces[1] else {
            panic!("DECLARE is sqlparser's");
        };
        assert!(matches!(
            Command::of(ast),
            Some(Command::Declare { name, .. }) if name.0 == "BIG"
        ));
    }

    #[test]
    fn cursor_statements_are_told_by_their_first_word() {
        assert!(leads_with_cursor_statement(
            "  -- c\n DECLARE x CURSOR FOR SELECT 1"
        ));
        assert!(leads_with_cursor_statement("close all"));
        assert!(leads_with_cursor_statement("MOVE 1 c"));
        assert!(!leads_with_cursor_statement("SELECT 'fetch'"));
        assert!(!leads_with_cursor_statement("FETCHX"));
    }
}
