//! Incremental aggregate state with retraction.
//!
//! A [`GroupState`] holds one accumulator per [`AggCall`] and the group's row
//! count. Every update carries a `diff` (+1 insert, -1 retract), and the state
//! is a commutative group under updates: applying the same multiset of
//! (row, diff) in any order yields the same bytes. That is what lets a
//! changelog replay or an upsert retraction arrive in any order.
//!
//! Semantics follow Postgres: `SUM` of smallint and integer is `bigint`,
//! of bigint `numeric`, both kept exactly in an `i128` and checked against
//! the output type when the final value is read. An update is all or
//! nothing: every accumulator is checked before any changes.
//! Sums keep a count of non-null inputs, so a sum whose inputs were all
//! retracted is NULL again (never a float residue like `1e-17`).
//! MIN/MAX keep a multiset (value → count) so retracting the minimum yields
//! the next one. Float sums are plain `f64` sums: retracting values other
//! than all of them can leave rounding residue, as any float sum does.
//!
//! Invariant: [`GroupState::encode`] is deterministic and its format is
//! versioned — it is stored in RocksDB and in changelog topics.

use crate::error::EvalError;
use crate::plan::{AggCall, AggFunc};
use common::codec::{encode_value, DecodeError, Reader};
use common::{SqlType, Value};
use rust_decimal::Decimal;
use std::cmp::Ordering;

/// Version 2 adds the rejected rows; version 1 states (none) still read.
const FORMAT_VERSION: u8 = 2;

/// The state of one group: its live row count and one accumulator per call.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupState {
    rows: i64,
    accs: Vec<Acc>,
    /// Rows whose insert an accumulator refused (a NUMERIC sum overflowing),
    /// with their counts. Over an input that retracts, the row was still
    /// recorded upstream (an upsert's latest value), and its retraction will
    /// come: it must take one of these, not a row that was applied.
    rejected: Vec<(Vec<u8>, i64)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Acc {
    /// COUNT(*) and COUNT(x).
    Count(i64),
    /// SUM/AVG of integers: exact sum and number of non-null inputs.
    IntSum {
        sum: i128,
        count: i64,
    },
    FloatSum {
        sum: f64,
        count: i64,
    },
    NumericSum {
        sum: Decimal,
        count: i64,
    },
    /// MIN/MAX: values sorted by `Value::total_cmp`, each with its count.
    /// Counts may go negative transiently (a retraction seen before its
    /// insert); such entries never count as present.
    Extremes(Vec<(Value, i64)>),
    /// MIN/MAX over an input that never retracts: just the extreme so far.
    /// Constant size, where `Extremes` grows with the distinct values.
    Extreme(Option<Value>),
}

impl GroupState {
    /// An empty group for `calls` over an input that may retract rows.
    pub fn new(calls: &[AggCall]) -> GroupState {
        GroupState::with_retractions(calls, true)
    }

    /// An empty group for `calls` over an input that only ever inserts (an
    /// append-only source, or a read): MIN and MAX keep one value, not a
    /// multiset. Retracting from such a group is an error.
    pub fn append_only(calls: &[AggCall]) -> GroupState {
        GroupState::with_retractions(calls, false)
    }

    /// An empty group for `calls`: [`GroupState::new`] when the input may
    /// retract rows, [`GroupState::append_only`] when it never does.
    pub fn with_retractions(calls: &[AggCall], retractions: bool) -> GroupState {
        let accs = calls
            .iter()
            .map(|c| match c.func {
                AggFunc::CountStar | AggFunc::Count => Acc::Count(0),
                AggFunc::Min | AggFunc::Max if retractions => Acc::Extremes(Vec::new()),
                AggFunc::Min | AggFunc::Max => Acc::Extreme(None),
                AggFunc::Sum | AggFunc::Avg => {
                    let input = c.arg.as_ref().map_or(SqlType::BigInt, |a| a.ty());
                    if input.is_integer() {
                        Acc::IntSum { sum: 0, count: 0 }
                    } else if input == SqlType::Numeric {
                        Acc::NumericSum {
                            sum: Decimal::ZERO,
                            count: 0,
                        }
                    } else {
                        Acc::FloatSum { sum: 0.0, count: 0 }
                    }
                }
            })
            .collect();
        GroupState {
            rows: 0,
            accs,
            rejected: Vec::new(),
        }
    }

    /// Live rows in the group. Zero means the group no longer exists.
    pub fn rows(&self) -> i64 {
        self.rows
    }

    /// True when every row of the group has been retracted (and no refused
    /// row awaits its retraction): delete its state.
    pub fn is_empty(&self) -> bool {
        self.rows == 0 && self.rejected.is_empty()
    }

    /// Remembers that inserting `row` failed, so that its retraction, when
    /// it comes, takes nothing from the accumulators.
    pub fn reject(&mut self, row: &[Value]) {
        let bytes = common::codec::encode_key(row);
        match self.rejected.iter_mut().find(|(r, _)| *r == bytes) {
            Some((_, n)) => *n += 1,
            None => self.rejected.push((bytes, 1)),
        }
    }

    /// Takes one rejected copy of `row`, if there is one.
    fn take_rejected(&mut self, row: &[Value]) -> bool {
        if self.rejected.is_empty() {
            return false;
        }
        let bytes = common::codec::encode_key(row);
        let Some(i) = self.rejected.iter().position(|(r, _)| *r == bytes) else {
            return false;
        };
        self.rejected[i].1 -= 1;
        if self.rejected[i].1 == 0 {
            self.rejected.remove(i);
        }
        true
    }

    /// Applies one input row (bound against the view's input) with `diff`
    /// (+1 insert, -1 retract; other multiplicities are allowed).
    pub fn update(
        &mut self,
        calls: &[AggCall],
        row: &[Value],
        params: &[Value],
        diff: i64,
    ) -> Result<(), EvalError> {
        if calls.len() != self.accs.len() {
            // A state written for another plan: refuse rather than mix.
            return Err(EvalError::Kind {
                op: "aggregate state",
                found: "mismatched state",
            });
        }
        // The retraction of a row whose insert was refused: it never counted.
        if diff < 0 && self.take_rejected(row) {
            return Ok(());
        }
        // Evaluate every argument before touching state, so a failing row
        // leaves the group unchanged.
        let args = calls
            .iter()
            .map(|c| c.arg.as_ref().map(|a| a.eval(row, params)).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        // Then check that every accumulator can take it (a NUMERIC sum may
        // overflow) before changing any: a record's update is all or nothing.
        for ((acc, call), arg) in self.accs.iter().zip(calls).zip(&args) {
            acc.check(call.func, arg.as_ref(), diff)?;
        }
        for ((acc, call), arg) in self.accs.iter_mut().zip(calls).zip(args) {
            acc.update(call.func, arg, diff)?;
        }
        self.rows += diff;
        if diff < 0 {
            self.retry_rejected(calls, params);
        }
        Ok(())
    }

    /// After a retraction made room, applies the refused rows that now fit:
    /// which of a group's rows were refused depends on the order they came
    /// in, and the group must converge to its rows whatever that order was.
    fn retry_rejected(&mut self, calls: &[AggCall], params: &[Value]) {
        let mut i = 0;
        while i < self.rejected.len() {
            let Ok(row) = common::codec::decode_row(&self.rejected[i].0) else {
                i += 1;
                continue;
            };
            // An insert never looks at the rejected rows.
            if self.update(calls, &row, params, 1).is_err() {
                i += 1;
                continue;
            }
            self.rejected[i].1 -= 1;
            if self.rejected[i].1 == 0 {
                self.rejected.remove(i);
            }
        }
    }

    /// Adds `other`, a state of the same calls over other rows: the state
    /// over both sets of rows (a read's partial aggregates, one per
    /// replica, merged on the reader).
    pub fn merge(&mut self, calls: &[AggCall], other: GroupState) -> Result<(), EvalError> {
        if calls.len() != self.accs.len() || other.accs.len() != self.accs.len() {
            return Err(EvalError::Kind {
                op: "aggregate state",
                found: "mismatched state",
            });
        }
        let mut merged = self.accs.clone();
        for ((acc, call), theirs) in merged.iter_mut().zip(calls).zip(other.accs) {
            acc.merge(call.func, theirs)?;
        }
        self.accs = merged;
        self.rows += other.rows;
        self.rejected.extend(other.rejected);
        Ok(())
    }

    /// The aggregates' current values, one per call, typed as `output_type`.
    pub fn finals(&self, calls: &[AggCall]) -> Result<Vec<Value>, EvalError> {
        self.accs
            .iter()
            .zip(calls)
            .map(|(acc, call)| acc.value(call))
            .collect()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT_VERSION];
        out.extend_from_slice(&self.rows.to_be_bytes());
        out.extend_from_slice(&(self.accs.len() as u32).to_be_bytes());
        for acc in &self.accs {
            acc.encode(&mut out);
        }
        out.extend_from_slice(&(self.rejected.len() as u32).to_be_bytes());
        for (row, n) in &self.rejected {
            out.extend_from_slice(&(row.len() as u32).to_be_bytes());
            out.extend_from_slice(row);
            out.extend_from_slice(&n.to_be_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<GroupState, DecodeError> {
        let corrupt = |at, reason| DecodeError { at, reason };
        let (&version, rest) = bytes
            .split_first()
            .ok_or(corrupt(0, "empty aggregate state"))?;
        if !(1..=FORMAT_VERSION).contains(&version) {
            return Err(corrupt(0, "unknown aggregate state version"));
        }
        let mut r = Reader::new(rest);
        let rows = r.i64()?;
        let n = r.u32()? as usize;
        if n > rest.len() {
            return Err(corrupt(9, "accumulator count exceeds input"));
        }
        let accs = (0..n)
            .map(|_| Acc::decode(&mut r))
            .collect::<Result<Vec<_>, _>>()?;
        let mut rejected = Vec::new();
        if version >= 2 {
            let n = r.u32()? as usize;
            if n > rest.len() {
                return Err(corrupt(9, "rejected row count exceeds input"));
            }
            for _ in 0..n {
                let len = r.u32()? as usize;
                let row = r.bytes(len)?.to_vec();
                rejected.push((row, r.i64()?));
            }
        }
        if !r.is_empty() {
            return Err(corrupt(bytes.len(), "trailing bytes after aggregate state"));
        }
        Ok(GroupState {
            rows,
            accs,
            rejected,
        })
    }
}

fn numeric_overflow() -> EvalError {
    EvalError::Overflow {
        ty: SqlType::Numeric,
    }
}

const COUNT: i64 = 1;
const INT_SUM: i64 = 2;
const FLOAT_SUM: i64 = 3;
const NUMERIC_SUM: i64 = 4;
const EXTREMES: i64 = 5;
const EXTREME: i64 = 6;

impl Acc {
    /// The error [`Acc::update`] would return for this input, without
    /// changing anything. After it passes, `update` cannot fail.
    fn check(&self, func: AggFunc, arg: Option<&Value>, diff: i64) -> Result<(), EvalError> {
        let Some(v) = arg.filter(|v| !v.is_null() && func != AggFunc::CountStar) else {
            return Ok(());
        };
        self.clone_scalar()
            .map_or(Ok(()), |mut copy| copy.update(func, Some(v.clone()), diff))
    }

    /// A copy of a constant-size accumulator, to try an update on; `None`
    /// for the multisets, whose updates cannot fail.
    fn clone_scalar(&self) -> Option<Acc> {
        match self {
            Acc::Extremes(_) => None,
            other => Some(other.clone()),
        }
    }

    fn update(&mut self, func: AggFunc, arg: Option<Value>, diff: i64) -> Result<(), EvalError> {
        let arg = match (func, arg) {
            (AggFunc::CountStar, _) => None,
            (_, None) | (_, Some(Value::Null)) => return Ok(()),
            (_, Some(v)) => Some(v),
        };
        match (self, arg) {
            (Acc::Count(n), _) => *n += diff,
            (Acc::IntSum { sum, count }, Some(v)) => {
                let Value::Int(i) = v else {
                    return Err(EvalError::Kind {
                        op: "sum(integer)",
                        found: v.kind(),
                    });
                };
                *sum += i128::from(i) * i128::from(diff);
                *count += diff;
            }
            (Acc::FloatSum { sum, count }, Some(v)) => {
                let f = v.as_f64().ok_or(EvalError::Kind {
                    op: "sum(double precision)",
                    found: v.kind(),
                })?;
                *sum += f * diff as f64;
                *count += diff;
                if *count == 0 {
                    *sum = 0.0;
                }
            }
            (Acc::NumericSum { sum, count }, Some(v)) => {
                let d = match v.cast(SqlType::Numeric)? {
                    Value::Numeric(d) => d,
                    other => {
                        return Err(EvalError::Kind {
                            op: "sum(numeric)",
                            found: other.kind(),
                        })
                    }
                };
                let delta = d
                    .checked_mul(Decimal::from(diff))
                    .ok_or(EvalError::Overflow {
                        ty: SqlType::Numeric,
                    })?;
                *sum = sum.checked_add(delta).ok_or(EvalError::Overflow {
                    ty: SqlType::Numeric,
                })?;
                *count += diff;
            }
            (Acc::Extreme(_), Some(_)) if diff < 0 => {
                return Err(EvalError::Kind {
                    op: "retraction from an append-only min/max",
                    found: "a retraction",
                })
            }
            (Acc::Extreme(current), Some(v)) => {
                let better = match current {
                    None => true,
                    Some(c) if func == AggFunc::Max => v.total_cmp(c) == Ordering::Greater,
                    Some(c) => v.total_cmp(c) == Ordering::Less,
                };
                if better {
                    *current = Some(v);
                }
            }
            (Acc::Extremes(entries), Some(v)) => {
                match entries.binary_search_by(|(e, _)| e.total_cmp(&v)) {
                    Ok(i) => {
                        entries[i].1 += diff;
                        if entries[i].1 == 0 {
                            entries.remove(i);
                        }
                    }
                    Err(i) => entries.insert(i, (v, diff)),
                }
            }
            (_, None) => {}
        }
        Ok(())
    }

    /// Adds another accumulator of the same call.
    fn merge(&mut self, func: AggFunc, other: Acc) -> Result<(), EvalError> {
        let mismatch = || EvalError::Kind {
            op: "merging aggregate states",
            found: "mismatched state",
        };
        match (&mut *self, other) {
            (Acc::Count(n), Acc::Count(m)) => *n += m,
            (Acc::IntSum { sum, count }, Acc::IntSum { sum: s, count: c }) => {
                *sum = sum.checked_add(s).ok_or_else(numeric_overflow)?;
                *count += c;
            }
            (Acc::FloatSum { sum, count }, Acc::FloatSum { sum: s, count: c }) => {
                *sum += s;
                *count += c;
            }
            (Acc::NumericSum { sum, count }, Acc::NumericSum { sum: s, count: c }) => {
                *sum = sum.checked_add(s).ok_or_else(numeric_overflow)?;
                *count += c;
            }
            // The other's extreme, or each value of its multiset with its
            // count, as updates of this one.
            (Acc::Extreme(_), Acc::Extreme(v)) => return self.update(func, v, 1),
            (Acc::Extremes(_), Acc::Extremes(theirs)) => {
                for (v, n) in theirs {
                    self.update(func, Some(v), n)?;
                }
            }
            _ => return Err(mismatch()),
        }
        Ok(())
    }

    fn value(&self, call: &AggCall) -> Result<Value, EvalError> {
        let avg = call.func == AggFunc::Avg;
        Ok(match self {
            Acc::Count(n) => Value::Int(*n),
            Acc::IntSum { count, .. }
            | Acc::FloatSum { count, .. }
            | Acc::NumericSum { count, .. }
                if *count <= 0 =>
            {
                Value::Null
            }
            // AVG of integers is numeric, as in Postgres.
            Acc::IntSum { sum, count } if avg => {
                let sum =
                    Decimal::try_from_i128_with_scale(*sum, 0).map_err(|_| numeric_overflow())?;
                Value::Numeric(
                    common::numeric::pg_div(sum, Decimal::from(*count))
                        .ok_or_else(numeric_overflow)?,
                )
            }
            // SUM(bigint) is numeric, as in Postgres: it cannot overflow bigint.
            Acc::IntSum { sum, .. } if call.output_type == SqlType::Numeric => Value::Numeric(
                Decimal::try_from_i128_with_scale(*sum, 0).map_err(|_| numeric_overflow())?,
            ),
            Acc::IntSum { sum, .. } => {
                Value::Int(i64::try_from(*sum).map_err(|_| EvalError::Overflow {
                    ty: SqlType::BigInt,
                })?)
            }
            Acc::FloatSum { sum, count } if avg => Value::Float(sum / *count as f64),
            Acc::FloatSum { sum, .. } => Value::Float(*sum),
            Acc::NumericSum { sum, count } if avg => Value::Numeric(
                common::numeric::pg_div(*sum, Decimal::from(*count))
                    .ok_or_else(numeric_overflow)?,
            ),
            Acc::NumericSum { sum, .. } => Value::Numeric(*sum),
            Acc::Extreme(v) => v.clone().unwrap_or(Value::Null),
            Acc::Extremes(entries) => {
                let mut live = entries.iter().filter(|(_, n)| *n > 0).map(|(v, _)| v);
                let v = if call.func == AggFunc::Max {
                    live.next_back()
                } else {
                    live.next()
                };
                v.cloned().unwrap_or(Value::Null)
            }
        })
        .and_then(|v| match (&v, call.output_type) {
            // Real columns sum as double internally; present the declared type.
            (Value::Float(_), SqlType::Real) => Ok(crate::eval::cast(v, SqlType::Real)?),
            _ => Ok(v),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let int = |out: &mut Vec<u8>, i: i64| out.extend_from_slice(&i.to_be_bytes());
        match self {
            Acc::Count(n) => {
                int(out, COUNT);
                int(out, *n);
            }
            Acc::IntSum { sum, count } => {
                int(out, INT_SUM);
                out.extend_from_slice(&sum.to_be_bytes());
                int(out, *count);
            }
            Acc::FloatSum { sum, count } => {
                int(out, FLOAT_SUM);
                let sum = if *sum == 0.0 { 0.0 } else { *sum };
                out.extend_from_slice(&sum.to_bits().to_be_bytes());
                int(out, *count);
            }
            Acc::NumericSum { sum, count } => {
                int(out, NUMERIC_SUM);
                encode_value(&Value::Numeric(*sum), out);
                int(out, *count);
            }
            Acc::Extreme(v) => {
                int(out, EXTREME);
                encode_value(v.as_ref().unwrap_or(&Value::Null), out);
            }
            Acc::Extremes(entries) => {
                int(out, EXTREMES);
                out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
                for (v, n) in entries {
                    encode_value(v, out);
                    int(out, *n);
                }
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Acc, DecodeError> {
        let bad = |reason| DecodeError { at: 0, reason };
        Ok(match r.i64()? {
            COUNT => Acc::Count(r.i64()?),
            INT_SUM => {
                let hi = r.u64()?;
                let lo = r.u64()?;
                let sum = ((u128::from(hi) << 64) | u128::from(lo)) as i128;
                Acc::IntSum {
                    sum,
                    count: r.i64()?,
                }
            }
            FLOAT_SUM => Acc::FloatSum {
                sum: f64::from_bits(r.u64()?),
                count: r.i64()?,
            },
            NUMERIC_SUM => match r.value()? {
                Value::Numeric(sum) => Acc::NumericSum {
                    sum,
                    count: r.i64()?,
                },
                _ => return Err(bad("numeric sum is not numeric")),
            },
            EXTREME => Acc::Extreme(Some(r.value()?).filter(|v| !v.is_null())),
            EXTREMES => {
                let n = r.u32()? as usize;
                let mut entries: Vec<(Value, i64)> = Vec::new();
                for _ in 0..n {
                    let v = r.value()?;
                    let c = r.i64()?;
                    if entries
                        .last()
                        .is_some_and(|(last, _)| last.total_cmp(&v) != Ordering::Less)
                    {
                        return Err(bad("min/max entries out of order"));
                    }
                    entries.push((v, c));
                }
                Acc::Extremes(entries)
            }
            _ => return Err(bad("unknown accumulator tag")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Expr;
    use std::str::FromStr;

    fn call(func: AggFunc, arg_ty: Option<SqlType>, output_type: SqlType) -> AggCall {
        AggCall {
            func,
            arg: arg_ty.map(|ty| Expr::Column { index: 0, ty }),
            output_type,
        }
    }

    fn calls_for(ty: SqlType, sum_ty: SqlType, avg_ty: SqlType) -> Vec<AggCall> {
        vec![
            call(AggFunc::CountStar, None, SqlType::BigInt),
            call(AggFunc::Count, Some(ty), SqlType::BigInt),
            call(AggFunc::Sum, Some(ty), sum_ty),
            call(AggFunc::Avg, Some(ty), avg_ty),
            call(AggFunc::Min, Some(ty), ty),
            call(AggFunc::Max, Some(ty), ty),
        ]
    }

    fn apply(state: &mut GroupState, calls: &[AggCall], v: Value, diff: i64) {
        state.update(calls, &[v], &[], diff).unwrap();
        // Every step survives an encode/decode round trip.
        let bytes = state.encode();
        assert_eq!(&GroupState::decode(&bytes).unwrap(), state);
    }

    #[test]
    fn append_only_extremes_keep_one_value_and_refuse_retractions() {
        let calls = [
            call(AggFunc::Min, Some(SqlType::BigInt), SqlType::BigInt),
            call(AggFunc::Max, Some(SqlType::BigInt), SqlType::BigInt),
        ];
        let mut s = GroupState::append_only(&calls);
        for v in [5, 3, 9, 3] {
            s.update(&calls, &[Value::Int(v)], &[], 1).unwrap();
        }
        s.update(&calls, &[Value::Null], &[], 1).unwrap();
        assert_eq!(
            s.finals(&calls).unwrap(),
            vec![Value::Int(3), Value::Int(9)]
        );
        let bytes = s.encode();
        assert!(
            bytes.len() < 64,
            "constant-size state, got {} bytes",
            bytes.len()
        );
        assert_eq!(GroupState::decode(&bytes).unwrap(), s);
        assert!(s.update(&calls, &[Value::Int(3)], &[], -1).is_err());
        let empty = GroupState::append_only(&calls);
        assert_eq!(
            empty.finals(&calls).unwrap(),
            vec![Value::Null, Value::Null]
        );
        assert_eq!(GroupState::decode(&empty.encode()).unwrap(), empty);
    }

    #[test]
    fn a_refused_insert_is_not_retracted_from_the_accumulators() {
        let calls = vec![
            call(AggFunc::CountStar, None, SqlType::BigInt),
            call(AggFunc::Sum, Some(SqlType::Numeric), SqlType::Numeric),
        ];
        let huge = Value::Numeric(Decimal::from_str("70000000000000000000000000000").unwrap());
        let mut s = GroupState::new(&calls);
        s.update(&calls, std::slice::from_ref(&huge), &[], 1)
            .unwrap();
        // The second insert overflows the sum: nothing changes, it is remembered.
        assert!(s
            .update(&calls, std::slice::from_ref(&huge), &[], 1)
            .is_err());
        s.reject(std::slice::from_ref(&huge));
        assert_eq!(s.finals(&calls).unwrap()[0], Value::Int(1));
        let s = GroupState::decode(&s.encode()).unwrap();
        let mut s = s;
        // Its retraction (an upsert's update or delete) takes the refused copy.
        s.update(&calls, std::slice::from_ref(&huge), &[], -1)
            .unwrap();
        assert_eq!(s.finals(&calls).unwrap(), vec![Value::Int(1), huge.clone()]);
        s.update(&calls, std::slice::from_ref(&huge), &[], -1)
            .unwrap();
        assert!(s.is_empty());
    }

    #[test]
    fn integer_aggregates_retract_to_previous_values() {
        let calls = calls_for(SqlType::Integer, SqlType::BigInt, SqlType::Double);
        let mut s = GroupState::new(&calls);
        assert_eq!(
            s.finals(&calls).unwrap(),
            vec![
                Value::Int(0),
                Value::Int(0),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null
            ]
        );
        for v in [5, 1, 9, 1] {
            apply(&mut s, &calls, Value::Int(v), 1);
        }
        apply(&mut s, &calls, Value::Null, 1);
        assert_eq!(
            s.finals(&calls).unwrap(),
            vec![
                Value::Int(5),
                Value::Int(4),
                Value::Int(16),
                // AVG of integers is numeric, 16 decimals as in Postgres.
                Value::Numeric(Decimal::new(40_000_000_000_000_000, 16)),
                Value::Int(1),
                Value::Int(9)
            ]
        );
        // Retract one of the two minimums: MIN stays 1.
        apply(&mut s, &calls, Value::Int(1), -1);
        assert_eq!(s.finals(&calls).unwrap()[4], Value::Int(1));
        // Retract the other: MIN moves to the next value. Retract the max too.
        apply(&mut s, &calls, Value::Int(1), -1);
        apply(&mut s, &calls, Value::Int(9), -1);
        assert_eq!(
            s.finals(&calls).unwrap(),
            vec![
                Value::Int(2),
                Value::Int(1),
                Value::Int(5),
                Value::Numeric(Decimal::new(50_000_000_000_000_000, 16)),
                Value::Int(5),
                Value::Int(5)
            ]
        );
        apply(&mut s, &calls, Value::Int(5), -1);
        assert!(!s.is_empty(), "the NULL row is still there");
        assert_eq!(
            s.finals(&calls).unwrap(),
            vec![
                Value::Int(1),
                Value::Int(0),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null
            ]
        );
        apply(&mut s, &calls, Value::Null, -1);
        assert!(s.is_empty());
        assert_eq!(s, GroupState::new(&calls));
    }

    #[test]
    fn float_sum_returns_to_null_not_residue() {
        let calls = calls_for(SqlType::Double, SqlType::Double, SqlType::Double);
        let mut s = GroupState::new(&calls);
        for v in [0.1, 0.2, 0.3] {
            apply(&mut s, &calls, Value::Float(v), 1);
        }
        for v in [0.1, 0.2, 0.3] {
            apply(&mut s, &calls, Value::Float(v), -1);
        }
        assert_eq!(s.finals(&calls).unwrap()[2], Value::Null);
        assert_eq!(s.finals(&calls).unwrap()[3], Value::Null);
        assert_eq!(s.encode(), GroupState::new(&calls).encode());
        apply(&mut s, &calls, Value::Float(2.5), 1);
        assert_eq!(s.finals(&calls).unwrap()[2], Value::Float(2.5));
    }

    #[test]
    fn numeric_and_text_aggregates() {
        let calls = calls_for(SqlType::Numeric, SqlType::Numeric, SqlType::Numeric);
        let mut s = GroupState::new(&calls);
        apply(&mut s, &calls, Value::Numeric(Decimal::new(150, 2)), 1);
        apply(&mut s, &calls, Value::Numeric(Decimal::new(250, 2)), 1);
        let f = s.finals(&calls).unwrap();
        assert_eq!(f[2], Value::Numeric(Decimal::new(4, 0)));
        assert_eq!(f[3], Value::Numeric(Decimal::new(2, 0)));

        let calls = vec![
            call(AggFunc::Min, Some(SqlType::Text), SqlType::Text),
            call(AggFunc::Max, Some(SqlType::Text), SqlType::Text),
        ];
        let mut s = GroupState::new(&calls);
        for v in ["b", "a", "c"] {
            apply(&mut s, &calls, Value::Text(v.into()), 1);
        }
        apply(&mut s, &calls, Value::Text("a".into()), -1);
        apply(&mut s, &calls, Value::Text("c".into()), -1);
        assert_eq!(
            s.finals(&calls).unwrap(),
            vec![Value::Text("b".into()), Value::Text("b".into())]
        );
    }

    #[test]
    fn updates_commute_even_when_a_retraction_comes_first() {
        let calls = calls_for(SqlType::BigInt, SqlType::BigInt, SqlType::Double);
        let mut a = GroupState::new(&calls);
        let mut b = GroupState::new(&calls);
        apply(&mut a, &calls, Value::Int(3), 1);
        apply(&mut a, &calls, Value::Int(7), 1);
        apply(&mut a, &calls, Value::Int(3), -1);
        apply(&mut b, &calls, Value::Int(3), -1);
        apply(&mut b, &calls, Value::Int(7), 1);
        apply(&mut b, &calls, Value::Int(3), 1);
        assert_eq!(a.encode(), b.encode());
        assert_eq!(a.finals(&calls).unwrap()[4], Value::Int(7));
    }

    #[test]
    fn bigint_sum_overflow_is_reported_and_recoverable() {
        let calls = vec![call(AggFunc::Sum, Some(SqlType::BigInt), SqlType::BigInt)];
        let mut s = GroupState::new(&calls);
        apply(&mut s, &calls, Value::Int(i64::MAX), 1);
        apply(&mut s, &calls, Value::Int(1), 1);
        assert_eq!(
            s.finals(&calls),
            Err(EvalError::Overflow {
                ty: SqlType::BigInt
            })
        );
        apply(&mut s, &calls, Value::Int(1), -1);
        assert_eq!(s.finals(&calls).unwrap(), vec![Value::Int(i64::MAX)]);
    }

    #[test]
    fn corrupt_state_is_an_error() {
        let calls = calls_for(SqlType::Integer, SqlType::BigInt, SqlType::Double);
        let mut s = GroupState::new(&calls);
        apply(&mut s, &calls, Value::Int(1), 1);
        let bytes = s.encode();
        assert!(GroupState::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(GroupState::decode(&[]).is_err());
        assert!(GroupState::decode(&[9]).is_err());
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(GroupState::decode(&extra).is_err());
    }
}
