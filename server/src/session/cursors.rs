//! The session's SQL cursors (`DECLARE`, `FETCH`, `MOVE`, `CLOSE`) and the
//! transaction block they live in.
//!
//! A cursor holds its query's running read and a position: 0 is before the
//! first row, `1..=n` on row n, `n + 1` after the last one — PostgreSQL's
//! model, so every direction (`PRIOR`, `ABSOLUTE`, `RELATIVE`, `BACKWARD`)
//! answers as it does there. `DECLARE` computes nothing beyond the read's
//! first batch; each `FETCH` or `MOVE` reads on only as far as it needs
//! (`LAST`, `ALL` and a negative `ABSOLUTE` need the end). A scrollable
//! cursor keeps the rows it has read, to go back to them; a `NO SCROLL`
//! cursor keeps only its current row.
//!
//! Invariants:
//! - `position <= dropped + held.len() + 1` always, and equals it only once
//!   the read has ended (a move never passes rows it has not read).
//! - A cursor without `WITH HOLD` never outlives the transaction block that
//!   declared it; a `WITH HOLD` cursor outlives it only when it commits.
//! - Cursor names are compared as given: the caller has already folded an
//!   unquoted identifier to lower case, as PostgreSQL does.

use super::{Batches, WireError};
use common::{Column, Row, SqlState, UserError};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;

/// A cursor's name, after identifier folding (`"BIG"` stays `BIG`, `Big`
/// becomes `big`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CursorName(pub String);

impl std::fmt::Display for CursorName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How many rows a `FORWARD` or `BACKWARD` fetch asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Rows(u64),
    All,
}

/// Where a `FETCH` or `MOVE` goes, with the grammar's shorthands resolved
/// (`NEXT` is `Forward(1)`, `LAST` is `Absolute(-1)`, `-2` is `Backward(2)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward(Count),
    Backward(Count),
    Absolute(i64),
    Relative(i64),
}

impl Direction {
    /// `FORWARD n` / `n` with a signed count: a negative one goes backward.
    pub fn forward_signed(n: i64) -> Direction {
        if n < 0 {
            Direction::Backward(Count::Rows(n.unsigned_abs()))
        } else {
            Direction::Forward(Count::Rows(n.unsigned_abs()))
        }
    }

    /// `BACKWARD n` with a signed count: a negative one goes forward.
    pub fn backward_signed(n: i64) -> Direction {
        if n < 0 {
            Direction::Forward(Count::Rows(n.unsigned_abs()))
        } else {
            Direction::Backward(Count::Rows(n.unsigned_abs()))
        }
    }
}

/// Whether a cursor may move backward (`[NO] SCROLL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scroll {
    /// Neither was said. PostgreSQL then allows backward moves when the
    /// plan can run backward; Eddy's cursors hold their rows, so it always can.
    Default,
    Scroll,
    NoScroll,
}

/// What `DECLARE` said besides the name and the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorOptions {
    pub scroll: Scroll,
    pub hold: bool,
    /// `BINARY`: the simple protocol sends its rows in binary.
    pub binary: bool,
}

/// One open cursor.
#[derive(Debug, Clone)]
struct Cursor {
    columns: Vec<Column>,
    /// Shared, so cloning the session (a DataFusion read takes a copy of
    /// the settings) does not copy the rows.
    rows: Arc<tokio::sync::Mutex<CursorRows>>,
    position: usize,
    options: CursorOptions,
    /// Declared in the open transaction block: a rollback drops it even
    /// when it is `WITH HOLD`.
    uncommitted: bool,
}

/// A cursor's rows: those it read and keeps, and the read, until it ends.
pub struct CursorRows {
    held: Vec<Row>,
    /// Rows read and no longer kept (a `NO SCROLL` cursor's past), before
    /// `held`.
    dropped: usize,
    rest: Option<Batches>,
}

impl CursorRows {
    /// Rows computed already.
    pub fn all(rows: Vec<Row>) -> CursorRows {
        CursorRows {
            held: rows,
            dropped: 0,
            rest: None,
        }
    }

    /// `first` computed and the rest still to read from `rest`.
    pub fn reading(first: Vec<Row>, rest: Batches) -> CursorRows {
        CursorRows {
            held: first,
            dropped: 0,
            rest: Some(rest),
        }
    }

    /// Rows read so far.
    fn read(&self) -> usize {
        self.dropped + self.held.len()
    }

    /// Reads on until `upto` rows were read (`None`: to the end) or the read
    /// ends. Safe to drop midway: a batch is kept once it arrived.
    async fn fill(&mut self, upto: Option<usize>) -> Result<(), WireError> {
        while upto.is_none_or(|n| self.read() < n) {
            let Some(rest) = self.rest.as_mut() else {
                break;
            };
            match rest.next().await {
                Some(Ok(batch)) => self.held.extend(batch),
                Some(Err(e)) => {
                    self.rest = None;
                    return Err(e);
                }
                None => self.rest = None,
            }
        }
        Ok(())
    }

    /// Forgets the rows before `position - 1` (a `NO SCROLL` cursor).
    fn forget_before(&mut self, position: usize) {
        let keep_from = position.saturating_sub(1).min(self.read());
        if keep_from > self.dropped {
            self.held.drain(..keep_from - self.dropped);
            self.dropped = keep_from;
        }
    }
}

impl std::fmt::Debug for CursorRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CursorRows")
            .field("held", &self.held.len())
            .field("dropped", &self.dropped)
            .field("reading", &self.rest.is_some())
            .finish()
    }
}

/// How many rows a move from `position` in `direction` must have read to
/// be exact; `None` for all of them.
fn rows_needed(position: usize, direction: Direction) -> Option<usize> {
    let plus = |k: u64| Some(position.saturating_add(usize::try_from(k).unwrap_or(usize::MAX)));
    match direction {
        Direction::Forward(Count::All) => None,
        Direction::Forward(Count::Rows(k)) => plus(k),
        Direction::Backward(_) => Some(position),
        Direction::Absolute(i) if i >= 0 => Some(usize::try_from(i).unwrap_or(usize::MAX)),
        Direction::Absolute(_) => None,
        Direction::Relative(i) if i >= 0 => plus(i.unsigned_abs()),
        Direction::Relative(_) => Some(position),
    }
}

/// The transaction block the session is in, as far as cursors care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Block {
    /// Autocommit: each statement is its own transaction.
    #[default]
    None,
    /// The statements of one multi-statement simple query, which
    /// PostgreSQL runs as one transaction when no BEGIN is open.
    Implicit,
    /// Between BEGIN and COMMIT / ROLLBACK.
    Explicit,
}

/// Why a cursor statement failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CursorError {
    #[error("cursor \"{name}\" does not exist")]
    Unknown { name: CursorName },
    #[error("cursor \"{name}\" already exists")]
    Duplicate { name: CursorName },
    #[error("DECLARE CURSOR can only be used in transaction blocks")]
    OutsideTransaction,
    #[error("cursor can only scan forward")]
    ForwardOnly,
    /// A protocol-level portal (Bind) named by FETCH or MOVE before any
    /// Execute ran it.
    #[error("portal \"{name}\" cannot be run")]
    PortalNotStarted { name: String },
    #[error("{message}")]
    Syntax {
        message: String,
        position: Option<u32>,
    },
    /// The cursor's read failed while a fetch read on.
    #[error("{}", .0.message)]
    Read(WireError),
}

impl UserError for CursorError {
    fn sqlstate(&self) -> SqlState {
        match self {
            CursorError::Unknown { .. } => SqlState::InvalidCursorName,
            CursorError::Duplicate { .. } => SqlState::DuplicateCursor,
            CursorError::OutsideTransaction => SqlState::NoActiveSqlTransaction,
            CursorError::ForwardOnly | CursorError::PortalNotStarted { .. } => {
                SqlState::ObjectNotInPrerequisiteState
            }
            CursorError::Syntax { .. } => SqlState::SyntaxError,
            CursorError::Read(e) => e.code,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            CursorError::Read(e) => return e.hint.clone(),
            CursorError::Unknown { .. } => "DECLARE the cursor first; one declared without WITH HOLD is closed at the end of its transaction.".to_owned(),
            CursorError::Duplicate { .. } => "CLOSE the open cursor first, or choose another name.".to_owned(),
            CursorError::OutsideTransaction => "BEGIN a transaction first, or declare the cursor WITH HOLD.".to_owned(),
            CursorError::ForwardOnly => "Declare it with SCROLL option to enable backward scan.".to_owned(),
            CursorError::PortalNotStarted { .. } => "Execute the portal once before moving it.".to_owned(),
            CursorError::Syntax { .. } => "FETCH and MOVE take [NEXT | PRIOR | FIRST | LAST | ABSOLUTE n | RELATIVE n | n | ALL | FORWARD [n | ALL] | BACKWARD [n | ALL]] [FROM | IN] cursor_name.".to_owned(),
        })
    }

    fn position(&self) -> Option<u32> {
        match self {
            CursorError::Syntax { position, .. } => *position,
            _ => None,
        }
    }
}

impl From<CursorError> for WireError {
    fn from(e: CursorError) -> WireError {
        match e {
            CursorError::Read(e) => e,
            other => WireError::from_user_error(&other),
        }
    }
}

/// The rows one `FETCH` returns, or for `MOVE` only how many.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
    /// Rows fetched, or for `MOVE` rows it would have fetched.
    pub count: usize,
}

/// The session's open cursors and its transaction block.
#[derive(Debug, Clone, Default)]
pub struct Cursors {
    open: HashMap<CursorName, Cursor>,
    block: Block,
}

impl Cursors {
    pub fn block(&self) -> Block {
        self.block
    }

    pub fn in_block(&self) -> bool {
        self.block != Block::None
    }

    /// Checks that `DECLARE name` may run, before its query is computed.
    pub fn check_declare(
        &self,
        name: &CursorName,
        options: CursorOptions,
    ) -> Result<(), CursorError> {
        if !options.hold && !self.in_block() {
            return Err(CursorError::OutsideTransaction);
        }
        if self.open.contains_key(name) {
            return Err(CursorError::Duplicate { name: name.clone() });
        }
        Ok(())
    }

    /// Opens a cursor over `rows`, positioned before the first one.
    pub fn declare(
        &mut self,
        name: CursorName,
        options: CursorOptions,
        columns: Vec<Column>,
        rows: CursorRows,
    ) -> Result<(), CursorError> {
        self.check_declare(&name, options)?;
        let cursor = Cursor {
            columns,
            rows: Arc::new(tokio::sync::Mutex::new(rows)),
            position: 0,
            options,
            uncommitted: self.in_block(),
        };
        self.open.insert(name, cursor);
        Ok(())
    }

    /// Whether the cursor was declared `BINARY`.
    pub fn is_binary(&self, name: &CursorName) -> bool {
        self.open.get(name).is_some_and(|c| c.options.binary)
    }

    /// The columns a cursor's fetches return, for Describe.
    pub fn columns(&self, name: &CursorName) -> Option<&[Column]> {
        self.open.get(name).map(|c| c.columns.as_slice())
    }

    pub fn contains(&self, name: &CursorName) -> bool {
        self.open.contains_key(name)
    }

    /// `FETCH` (`keep_rows`) or `MOVE`: moves the cursor, reading on as far
    /// as it goes, and returns the rows passed over, in the order travelled.
    pub async fn fetch(
        &mut self,
        name: &CursorName,
        direction: Direction,
        keep_rows: bool,
    ) -> Result<Fetched, CursorError> {
        let cursor = self
            .open
            .get_mut(name)
            .ok_or_else(|| CursorError::Unknown { name: name.clone() })?;
        let no_scroll = cursor.options.scroll == Scroll::NoScroll;
        // A move back is refused before reading on: a forward-only cursor
        // must not read to learn where a move ends (one that ends before
        // the current row only once the end is known — `ABSOLUTE -n` — is
        // refused after it).
        let back = match direction {
            Direction::Backward(c) => c != Count::Rows(0),
            Direction::Absolute(i) if i >= 0 => {
                usize::try_from(i).unwrap_or(usize::MAX) < cursor.position
            }
            Direction::Relative(i) => i < 0,
            _ => false,
        };
        if no_scroll && back {
            return Err(CursorError::ForwardOnly);
        }
        let mut rows = cursor.rows.lock().await;
        rows.fill(rows_needed(cursor.position, direction))
            .await
            .map_err(CursorError::Read)?;
        let (passed, position) = walk(rows.read(), cursor.position, direction);
        if position < cursor.position && no_scroll {
            return Err(CursorError::ForwardOnly);
        }
        cursor.position = position;
        let fetched = Fetched {
            columns: cursor.columns.clone(),
            count: passed.len(),
            rows: if keep_rows {
                passed
                    .iter()
                    .filter_map(|&i| rows.held.get(i.checked_sub(rows.dropped)?).cloned())
                    .collect()
            } else {
                Vec::new()
            },
        };
        if no_scroll {
            rows.forget_before(position);
        }
        Ok(fetched)
    }

    pub fn close(&mut self, name: &CursorName) -> Result<(), CursorError> {
        self.open
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| CursorError::Unknown { name: name.clone() })
    }

    pub fn close_all(&mut self) {
        self.open.clear();
    }

    /// `BEGIN`, or the start of a multi-statement simple query
    /// (`implicit`) outside one. Through [`SessionVars::begin`] (and its
    /// `commit`/`rollback`), which move the block's settings with it.
    ///
    /// [`SessionVars::begin`]: super::vars::SessionVars::begin
    pub(super) fn begin(&mut self, implicit: bool) {
        self.block = match (implicit, self.block) {
            (true, Block::None) => Block::Implicit,
            (true, block) => block,
            (false, _) => Block::Explicit,
        };
    }

    /// The block commits: cursors without `WITH HOLD` close.
    pub(super) fn commit(&mut self) {
        self.open.retain(|_, c| c.options.hold);
        for cursor in self.open.values_mut() {
            cursor.uncommitted = false;
        }
        self.block = Block::None;
    }

    /// The block rolls back: cursors without `WITH HOLD` close, and so do
    /// those it declared.
    pub(super) fn rollback(&mut self) {
        self.open.retain(|_, c| c.options.hold && !c.uncommitted);
        self.block = Block::None;
    }
}

/// The row indexes (0-based, in the order travelled) a move from
/// `position` in `direction` passes over among `n` rows, and the position
/// it ends at.
fn walk(n: usize, position: usize, direction: Direction) -> (Vec<usize>, usize) {
    let end = n + 1;
    let current = |p: usize| -> Vec<usize> {
        if (1..=n).contains(&p) {
            vec![p - 1]
        } else {
            Vec::new()
        }
    };
    let steps = |count: Count| match count {
        Count::All => usize::MAX,
        Count::Rows(k) => usize::try_from(k).unwrap_or(usize::MAX),
    };
    match direction {
        Direction::Forward(Count::Rows(0)) | Direction::Backward(Count::Rows(0)) => {
            (current(position), position)
        }
        Direction::Forward(count) => {
            let to = position.saturating_add(steps(count)).min(end);
            // Rows position+1 ..= min(to, n), as 0-based indexes.
            ((position.min(n)..to.min(n)).collect(), to)
        }
        Direction::Backward(count) => {
            let to = position.saturating_sub(steps(count));
            // Rows position-1 down to max(to, 1), as 0-based indexes.
            let first = to.max(1) - 1;
            let last = position.saturating_sub(1).min(n);
            ((first..last).rev().collect(), to)
        }
        Direction::Absolute(i) => {
            let to = if i >= 0 {
                usize::try_from(i).unwrap_or(usize::MAX).min(end)
            } else {
                let back = usize::try_from(i.unsigned_abs()).unwrap_or(usize::MAX);
                end.saturating_sub(back)
            };
            (current(to), to)
        }
        Direction::Relative(i) => {
            let by = usize::try_from(i.unsigned_abs()).unwrap_or(usize::MAX);
            let to = if i >= 0 {
                position.saturating_add(by).min(end)
            } else {
                position.saturating_sub(by)
            };
            (current(to), to)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::Value;
    use futures::executor::block_on;

    fn name(s: &str) -> CursorName {
        CursorName(s.to_owned())
    }

    const SCROLL: CursorOptions = CursorOptions {
        scroll: Scroll::Scroll,
        hold: false,
        binary: false,
    };

    /// A scrollable cursor over 1..=5 inside a transaction block.
    fn five() -> Cursors {
        let mut c = Cursors::default();
        c.begin(false);
        let rows = (1..=5).map(|i| vec![Value::Int(i)]).collect();
        c.declare(name("c"), SCROLL, Vec::new(), CursorRows::all(rows))
            .unwrap();
        c
    }

    fn fetch(c: &mut Cursors, d: Direction) -> Vec<i64> {
        block_on(c.fetch(&name("c"), d, true))
            .unwrap()
            .rows
            .into_iter()
            .map(|r| match r[0] {
                Value::Int(i) => i,
                _ => unreachable!(),
            })
            .collect()
    }

    use Direction::*;

    /// The sequence PostgreSQL 15 answers for the same statements over
    /// `generate_series(1, 5)` (see tests/tests/protocol.rs for the check
    /// against a live server).
    #[test]
    fn every_direction_moves_as_in_postgres() {
        let mut c = five();
        assert_eq!(fetch(&mut c, Forward(Count::Rows(1))), [1]);
        assert_eq!(fetch(&mut c, Forward(Count::Rows(2))), [2, 3]);
        assert_eq!(fetch(&mut c, Forward(Count::Rows(1))), [4]);
        assert_eq!(fetch(&mut c, Backward(Count::Rows(1))), [3]);
        assert_eq!(fetch(&mut c, Forward(Count::Rows(0))), [3]);
        assert_eq!(fetch(&mut c, Relative(0)), [3]);
        assert_eq!(fetch(&mut c, Direction::forward_signed(-1)), [2]);
        assert_eq!(
            block_on(c.fetch(&name("c"), Forward(Count::Rows(2)), false))
                .unwrap()
                .count,
            2
        );
        assert_eq!(
            block_on(c.fetch(&name("c"), Forward(Count::All), false))
                .unwrap()
                .count,
            1
        );
        assert_eq!(fetch(&mut c, Backward(Count::Rows(2))), [5, 4]);
        assert_eq!(fetch(&mut c, Absolute(9)), Vec::<i64>::new());
        assert_eq!(fetch(&mut c, Backward(Count::Rows(1))), [5]);
        assert_eq!(fetch(&mut c, Absolute(-2)), [4]);
        assert_eq!(fetch(&mut c, Absolute(0)), Vec::<i64>::new());
        assert_eq!(fetch(&mut c, Relative(7)), Vec::<i64>::new());
        assert_eq!(fetch(&mut c, Relative(-2)), [4]);
        assert_eq!(
            block_on(c.fetch(&name("c"), Absolute(3), false))
                .unwrap()
                .count,
            1
        );
        assert_eq!(
            block_on(c.fetch(&name("c"), Absolute(30), false))
                .unwrap()
                .count,
            0
        );
        assert_eq!(
            block_on(c.fetch(&name("c"), Backward(Count::All), false))
                .unwrap()
                .count,
            5
        );
        assert_eq!(
            block_on(c.fetch(&name("c"), Relative(2), false))
                .unwrap()
                .count,
            1
        );
        assert_eq!(fetch(&mut c, Absolute(1)), [1]);
        assert_eq!(fetch(&mut c, Absolute(-1)), [5]);
        assert_eq!(fetch(&mut c, Forward(Count::All)), Vec::<i64>::new());
        assert_eq!(fetch(&mut c, Backward(Count::All)), [5, 4, 3, 2, 1]);
        assert_eq!(
            fetch(&mut c, Direction::forward_signed(-1)),
            Vec::<i64>::new()
        );
        assert_eq!(fetch(&mut c, Direction::backward_signed(-1)), [1]);
        assert_eq!(fetch(&mut c, Absolute(i64::MIN)), Vec::<i64>::new());
        assert_eq!(
            fetch(&mut c, Forward(Count::Rows(u64::MAX))),
            [1, 2, 3, 4, 5]
        );
    }

    /// A cursor over batches [1, 2], [3], then a failed read.
    fn reading(scroll: Scroll) -> Cursors {
        let mut c = Cursors::default();
        c.begin(false);
        let batches: Vec<Result<Vec<Row>, WireError>> = vec![
            Ok(vec![vec![Value::Int(3)]]),
            Err(WireError::new(SqlState::DivisionByZero, "division by zero")),
        ];
        let options = CursorOptions {
            scroll,
            hold: false,
            binary: false,
        };
        let rows = CursorRows::reading(
            vec![vec![Value::Int(1)], vec![Value::Int(2)]],
            futures::stream::iter(batches).boxed(),
        );
        c.declare(name("c"), options, Vec::new(), rows).unwrap();
        c
    }

    #[test]
    fn a_cursor_reads_on_only_as_far_as_a_fetch_goes() {
        let mut c = reading(Scroll::Scroll);
        assert_eq!(fetch(&mut c, Forward(Count::Rows(3))), [1, 2, 3]);
        assert_eq!(fetch(&mut c, Backward(Count::Rows(2))), [2, 1]);
        assert_eq!(fetch(&mut c, Absolute(3)), [3]);
        // The end is past the failed read: reaching for it fails with the
        // read's error, and the rows read stay.
        let e = block_on(c.fetch(&name("c"), Forward(Count::All), true)).unwrap_err();
        assert_eq!(e.sqlstate(), SqlState::DivisionByZero);
        assert_eq!(fetch(&mut c, Absolute(1)), [1]);
        assert_eq!(
            fetch(&mut c, Absolute(-1)),
            [3],
            "the read ended at the error"
        );
    }

    #[test]
    fn a_no_scroll_cursor_keeps_only_its_current_row() {
        let mut c = reading(Scroll::NoScroll);
        assert_eq!(fetch(&mut c, Forward(Count::Rows(2))), [1, 2]);
        assert_eq!(fetch(&mut c, Relative(0)), [2]);
        assert_eq!(fetch(&mut c, Absolute(2)), [2]);
        let back = block_on(c.fetch(&name("c"), Absolute(1), true));
        assert_eq!(back.unwrap_err(), CursorError::ForwardOnly);
        assert_eq!(fetch(&mut c, Forward(Count::Rows(1))), [3]);
        let rows = c.open[&name("c")].rows.clone();
        let rows = block_on(rows.lock());
        assert_eq!((rows.dropped, rows.held.len()), (2, 1));
    }

    #[test]
    fn a_no_scroll_cursor_refuses_to_go_back() {
        let mut c = Cursors::default();
        c.begin(false);
        let options = CursorOptions {
            scroll: Scroll::NoScroll,
            hold: false,
            binary: false,
        };
        c.declare(
            name("c"),
            options,
            Vec::new(),
            CursorRows::all(vec![vec![Value::Int(1)]]),
        )
        .unwrap();
        assert_eq!(fetch(&mut c, Forward(Count::Rows(1))), [1]);
        assert_eq!(
            block_on(c.fetch(&name("c"), Backward(Count::Rows(1)), true)),
            Err(CursorError::ForwardOnly)
        );
    }

    #[test]
    fn names_are_unique_and_must_exist() {
        let mut c = five();
        let again = c.declare(name("c"), SCROLL, Vec::new(), CursorRows::all(Vec::new()));
        assert_eq!(again, Err(CursorError::Duplicate { name: name("c") }));
        assert_eq!(
            block_on(c.fetch(&name("C"), Forward(Count::All), true)),
            Err(CursorError::Unknown { name: name("C") })
        );
        c.close(&name("c")).unwrap();
        assert!(c.close(&name("c")).is_err());
    }

    #[test]
    fn without_hold_a_cursor_needs_a_transaction_and_ends_with_it() {
        let mut c = Cursors::default();
        assert_eq!(
            c.declare(name("c"), SCROLL, Vec::new(), CursorRows::all(Vec::new())),
            Err(CursorError::OutsideTransaction)
        );
        let hold = CursorOptions {
            scroll: Scroll::Default,
            hold: true,
            binary: false,
        };
        c.declare(
            name("held_before"),
            hold,
            Vec::new(),
            CursorRows::all(Vec::new()),
        )
        .unwrap();
        c.begin(false);
        c.declare(name("c"), SCROLL, Vec::new(), CursorRows::all(Vec::new()))
            .unwrap();
        c.declare(name("held"), hold, Vec::new(), CursorRows::all(Vec::new()))
            .unwrap();
        c.commit();
        assert!(!c.contains(&name("c")));
        assert!(c.contains(&name("held")));

        c.begin(false);
        c.declare(
            name("held_then_rolled_back"),
            hold,
            Vec::new(),
            CursorRows::all(Vec::new()),
        )
        .unwrap();
        c.rollback();
        assert!(!c.contains(&name("held_then_rolled_back")));
        assert!(c.contains(&name("held")));
        assert!(c.contains(&name("held_before")));
    }

    #[test]
    fn a_multi_statement_query_is_a_block_until_begin_takes_over() {
        let mut c = Cursors::default();
        c.begin(true);
        assert_eq!(c.block(), Block::Implicit);
        c.begin(false);
        assert_eq!(c.block(), Block::Explicit);
        c.begin(true);
        assert_eq!(c.block(), Block::Explicit);
        c.commit();
        assert_eq!(c.block(), Block::None);
    }
}
