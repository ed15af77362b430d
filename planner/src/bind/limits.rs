//! What one statement may ask of a node, checked before anything else sees it.
//!
//! Binding, evaluation, EXPLAIN, the JSON of a view's plan in the command log
//! and even dropping a syntax tree all recurse once per level of expression
//! nesting, so a statement nested deep enough overflows a thread's stack and
//! aborts the whole node. sqlparser bounds its own recursion (parentheses,
//! prefix operators), but a chain of infix operators (`1+1+...`, `a OR b OR
//! ...`, `x::int::text...`, `q UNION q UNION ...`) is parsed by a loop into a
//! left-deep tree of any depth. Two checks keep every later step bounded:
//!
//! 1. Before parsing, the tokens: at most [`MAX_OPERATORS`] operator tokens
//!    and keywords per statement text. A tree's depth can never exceed that
//!    count, so what the parser builds can always be walked and dropped.
//! 2. After parsing, the tree: at most [`MAX_DEPTH`] levels of nested
//!    expressions and queries. Everything downstream (binder, evaluator,
//!    planner, the command log's JSON) is written to handle this depth on a
//!    node's threads (see `eddy serve`'s stack sizes); a test holds each of
//!    them to it.
//!
//! Invariant: a statement that passes these checks can be planned, written to
//! the command log, read back by every node and evaluated without exhausting
//! a stack; one that fails them gets 54001 and nothing else happens.

use crate::error::PlanError;
use sqlparser::ast::{Expr, Query, SetExpr, Statement, Visit, Visitor};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, Tokenizer};
use std::ops::ControlFlow;

/// Operator tokens and keywords one statement text may hold.
pub const MAX_OPERATORS: usize = 20_000;

/// Levels of nested expressions and subqueries a statement may have.
pub const MAX_DEPTH: usize = 1_000;

/// Check 1: counts the operator tokens and keywords of `sql` (all of its
/// statements; the limit is per text, which bounds each statement too).
pub fn check_tokens(sql: &str) -> Result<(), PlanError> {
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else {
        // The parser reports tokenizer errors with their position.
        return Ok(());
    };
    let operators = tokens.iter().filter(|t| is_operator(t)).count();
    if operators > MAX_OPERATORS {
        return Err(PlanError::TooComplex {
            what: "operators and keywords",
            found: operators,
            limit: MAX_OPERATORS,
        });
    }
    Ok(())
}

/// Tokens that can start a new level of an infix chain: everything but
/// names, literals, separators and white space.
fn is_operator(t: &Token) -> bool {
    match t {
        Token::Word(w) => w.keyword != Keyword::NoKeyword,
        Token::Whitespace(_)
        | Token::Comma
        | Token::SemiColon
        | Token::LParen
        | Token::RParen
        | Token::Number(..)
        | Token::Placeholder(_)
        | Token::EOF
        | Token::SingleQuotedString(_)
        | Token::DoubleQuotedString(_)
        | Token::TripleSingleQuotedString(_)
        | Token::TripleDoubleQuotedString(_)
        | Token::DollarQuotedString(_)
        | Token::EscapedStringLiteral(_)
        | Token::UnicodeStringLiteral(_)
        | Token::NationalStringLiteral(_)
        | Token::HexStringLiteral(_)
        | Token::SingleQuotedByteStringLiteral(_)
        | Token::DoubleQuotedByteStringLiteral(_)
        | Token::SingleQuotedRawStringLiteral(_)
        | Token::DoubleQuotedRawStringLiteral(_) => false,
        _ => true,
    }
}

/// Check 2: the nesting depth of expressions and queries in `stmt`.
pub fn check_depth(stmt: &Statement) -> Result<(), PlanError> {
    let mut depth = Depth { now: 0 };
    match stmt.visit(&mut depth) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(PlanError::TooComplex {
            what: "levels of nested expressions",
            found: MAX_DEPTH + 1,
            limit: MAX_DEPTH,
        }),
    }
}

/// Counts the current nesting while walking; stops (without going deeper)
/// as soon as it passes the limit, so the walk itself stays bounded.
struct Depth {
    now: usize,
}

impl Depth {
    fn enter(&mut self) -> ControlFlow<()> {
        self.now += 1;
        if self.now > MAX_DEPTH {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn leave(&mut self) -> ControlFlow<()> {
        self.now -= 1;
        ControlFlow::Continue(())
    }
}

impl Visitor for Depth {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        // The walk has no hook for set operations: measure their chain
        // (`q UNION q UNION ...`) here, without recursing, before the walk
        // descends into it.
        if self.now + set_depth(&query.body) > MAX_DEPTH {
            return ControlFlow::Break(());
        }
        self.enter()
    }

    fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.leave()
    }

    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.enter()
    }

    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.leave()
    }
}

/// How deeply set operations nest in `body`, counted with a stack of its
/// own (stopping past [`MAX_DEPTH`]); nested queries count one level each
/// and are measured again when the walk reaches them.
fn set_depth(body: &SetExpr) -> usize {
    let mut deepest = 0;
    let mut todo = vec![(body, 1)];
    while let Some((node, depth)) = todo.pop() {
        deepest = deepest.max(depth);
        if deepest > MAX_DEPTH {
            break;
        }
        if let SetExpr::SetOperation { left, right, .. } = node {
            todo.push((left, depth + 1));
            todo.push((right, depth + 1));
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(op: &str, terms: usize) -> String {
        format!("SELECT {}", vec!["1"; terms].join(op))
    }

    /// Runs `f` on a thread with the stack a node's workers have.
    fn on_node_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(crate::NODE_THREAD_STACK)
            .spawn(f)
            .expect("spawn")
            .join()
            .expect("no stack overflow")
    }

    /// Each text is refused with 54001, on a node's stack, without overflowing it.
    fn all_too_complex(texts: Vec<String>) {
        for sql in texts {
            let head = sql[..40].to_owned();
            let err = on_node_stack(move || crate::parse(&sql).unwrap_err());
            assert!(
                matches!(err, PlanError::TooComplex { .. }),
                "{head}: {err:?}"
            );
        }
    }

    #[test]
    fn a_chain_at_the_depth_limit_is_accepted() {
        let sql = chain(" + ", MAX_DEPTH - 2);
        on_node_stack(move || {
            let stmts = crate::parse(&sql).expect("within the limit");
            assert_eq!(stmts.len(), 1);
        });
    }

    #[test]
    fn a_chain_past_the_depth_limit_is_too_complex() {
        let mut texts: Vec<String> = [" + ", " OR ", " || ", " UNION SELECT "]
            .iter()
            .map(|op| chain(op, MAX_DEPTH + 10))
            .collect();
        texts.push(format!("SELECT 1{}", "::int".repeat(MAX_DEPTH + 10)));
        all_too_complex(texts);
    }

    #[test]
    fn the_longest_chain_the_tokens_allow_is_walked_and_dropped_safely() {
        // Just under the operator limit: parsed into a tree as deep as the
        // chain, rejected by the depth check, then dropped, all on a node's stack.
        let mut texts: Vec<String> = [(" + ", 1), (" OR ", 1), (" UNION SELECT ", 2)]
            .iter()
            .map(|(op, tokens)| chain(op, (MAX_OPERATORS - 10) / tokens))
            .collect();
        // `::` and the type name are one operator token each: SELECT + 2n.
        texts.push(format!(
            "SELECT 1{}",
            "::int".repeat((MAX_OPERATORS - 10) / 2)
        ));
        all_too_complex(texts);
    }

    #[test]
    fn too_many_operators_are_refused_before_parsing() {
        let sql = chain(" + ", MAX_OPERATORS + 5);
        let err = crate::parse(&sql).unwrap_err();
        assert!(
            matches!(
                err,
                PlanError::TooComplex {
                    what: "operators and keywords",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn long_flat_statements_are_fine() {
        let list = (0..50_000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT * FROM t WHERE x IN ({list}) AND y = 'a'");
        assert!(crate::parse(&sql).is_ok());
    }
}
