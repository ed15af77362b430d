//! Where DataFusion and PostgreSQL answer differently and a user would
//! notice, DataFusion is made to answer as PostgreSQL:
//!
//! - integer `+`, `-`, `*` overflow is an error (22003, "bigint out of
//!   range"), not a wrapped result: an analyzer rule turns those operators
//!   on integers into checked functions, keeping each expression's name;
//! - `SUM` of integers is `numeric` (PostgreSQL sums bigint into numeric, so
//!   it never overflows): a `sum` that coerces integers to
//!   `DECIMAL(38, 0)` and otherwise is DataFusion's own.
//!
//! Integer division truncates and NULLs sort last ascending in DataFusion
//! as in PostgreSQL; numbers, timestamps and text are formatted by Eddy's
//! own encoder, so their text is PostgreSQL's.

use datafusion::arrow::array::{Array, ArrayRef, Datum};
use datafusion::arrow::compute::kernels::numeric;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::functions_aggregate::average::avg_udaf;
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, BinaryExpr, ColumnarValue, Expr, ExprSchemable,
    GroupsAccumulator, LogicalPlan, Operator, ReversedUDAF, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use std::fmt;
use std::sync::Arc;

/// The name PostgreSQL gives an integer type in "... out of range".
fn pg_integer_name(t: &DataType) -> &'static str {
    match t {
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint",
        DataType::Int32 | DataType::UInt16 => "integer",
        _ => "bigint",
    }
}

type Kernel = fn(&dyn Datum, &dyn Datum) -> std::result::Result<ArrayRef, ArrowError>;

/// `a op b` on integers, failing on overflow.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Checked {
    name: &'static str,
    signature: Signature,
    #[allow(clippy::struct_field_names)]
    kernel: KernelFn,
}

/// A kernel compared and hashed by the operator it stands for.
#[derive(Clone, Copy)]
struct KernelFn(&'static str, Kernel);

impl fmt::Debug for KernelFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}
impl PartialEq for KernelFn {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for KernelFn {}
impl std::hash::Hash for KernelFn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl ScalarUDFImpl for Checked {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args.first().cloned().unwrap_or(DataType::Int64))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [a, b] = args.args.as_slice() else {
            return Err(DataFusionError::Internal(format!(
                "{} takes two arguments",
                self.name
            )));
        };
        let ty = args.return_field.data_type().clone();
        let scalar = matches!((a, b), (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_)));
        let datum = |v: &ColumnarValue| -> Result<Box<dyn Datum>> {
            Ok(match v {
                ColumnarValue::Array(a) => Box::new(a.clone()),
                ColumnarValue::Scalar(s) => Box::new(s.to_scalar()?),
            })
        };
        let (a, b) = (datum(a)?, datum(b)?);
        let out = (self.kernel.1)(a.as_ref(), b.as_ref()).map_err(|e| match e {
            ArrowError::ArithmeticOverflow(_) => {
                DataFusionError::Execution(format!("{} out of range", pg_integer_name(&ty)))
            }
            other => other.into(),
        })?;
        Ok(if scalar && out.len() == 1 {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(out)
        })
    }
}

fn checked(name: &'static str, kernel: Kernel) -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(Checked {
        name,
        signature: Signature::any(2, Volatility::Immutable),
        kernel: KernelFn(name, kernel),
    }))
}

/// The analyzer rule that makes integer arithmetic checked.
#[derive(Debug)]
pub struct CheckedArithmetic {
    add: Arc<ScalarUDF>,
    sub: Arc<ScalarUDF>,
    mul: Arc<ScalarUDF>,
}

impl CheckedArithmetic {
    pub fn new() -> CheckedArithmetic {
        CheckedArithmetic {
            add: checked("eddy_checked_add", numeric::add),
            sub: checked("eddy_checked_sub", numeric::sub),
            mul: checked("eddy_checked_mul", numeric::mul),
        }
    }

    fn rewrite(&self, e: Expr, schema: &datafusion::common::DFSchema) -> Result<Transformed<Expr>> {
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &e else {
            return Ok(Transformed::no(e));
        };
        let f = match op {
            Operator::Plus => &self.add,
            Operator::Minus => &self.sub,
            Operator::Multiply => &self.mul,
            _ => return Ok(Transformed::no(e)),
        };
        let integer = |x: &Expr| x.get_type(schema).is_ok_and(|t| t.is_integer());
        if !(integer(left) && integer(right)) {
            return Ok(Transformed::no(e));
        }
        let Expr::BinaryExpr(BinaryExpr { left, right, .. }) = e else {
            unreachable!("matched above")
        };
        Ok(Transformed::yes(f.call(vec![*left, *right])))
    }
}

impl AnalyzerRule for CheckedArithmetic {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            let schema = merge_schema(&plan.inputs());
            let names = NamePreserver::new(&plan);
            plan.map_expressions(|expr| {
                let name = names.save(&expr);
                let rewritten = expr.transform_up(|e| self.rewrite(e, &schema))?;
                Ok(rewritten.update_data(|e| name.restore(e)))
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "eddy_checked_arithmetic"
    }
}

/// One of DataFusion's aggregates with its argument and result typed as
/// PostgreSQL types them, computed by DataFusion's own accumulators.
#[derive(Debug)]
pub struct PgTyped {
    name: &'static str,
    inner: Arc<AggregateUDF>,
    signature: Signature,
    /// The type the argument is computed as.
    argument: fn(&DataType) -> Option<DataType>,
    /// The result type for that argument type; `None`: DataFusion's.
    result: Option<fn(&DataType) -> DataType>,
}

impl PgTyped {
    /// `sum`: integers sum into numeric (never overflowing bigint).
    pub fn sum() -> AggregateUDF {
        PgTyped::udaf(
            "sum",
            sum_udaf(),
            |t| match t {
                DataType::Interval(_) | DataType::Duration(_) => Some(t.clone()),
                t => numeric_argument(t),
            },
            None,
        )
    }

    /// `avg`: of integers and numerics a numeric, with the 16 digits after
    /// the point PostgreSQL shows for an average from 1 to 9999 (it shows
    /// fewer for larger ones, more for smaller ones); of floats a double.
    pub fn avg() -> AggregateUDF {
        PgTyped::udaf(
            "avg",
            avg_udaf(),
            numeric_argument,
            Some(|t| match t {
                DataType::Decimal128(_, s) => {
                    DataType::Decimal128(38, (*s).max(super::convert::AVG_SCALE))
                }
                other => other.clone(),
            }),
        )
    }

    fn udaf(
        name: &'static str,
        inner: Arc<AggregateUDF>,
        argument: fn(&DataType) -> Option<DataType>,
        result: Option<fn(&DataType) -> DataType>,
    ) -> AggregateUDF {
        AggregateUDF::new_from_impl(PgTyped {
            name,
            inner,
            signature: Signature::user_defined(Volatility::Immutable),
            argument,
            result,
        })
    }
}

/// One per name: two are the same aggregate when their names are.
impl PartialEq for PgTyped {
    fn eq(&self, other: &PgTyped) -> bool {
        self.name == other.name
    }
}

impl Eq for PgTyped {}

impl std::hash::Hash for PgTyped {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

/// A numeric aggregate's argument as PostgreSQL computes it: an integer as
/// a numeric (it never overflows), a float as a double, a numeric as it
/// is; `None` for any other type.
fn numeric_argument(t: &DataType) -> Option<DataType> {
    match t {
        t if t.is_integer() || t.is_null() => Some(DataType::Decimal128(38, 0)),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => Some(DataType::Float64),
        DataType::Decimal128(..) | DataType::Decimal256(..) => Some(t.clone()),
        _ => None,
    }
}

impl AggregateUDFImpl for PgTyped {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let [t] = args else {
            return Err(DataFusionError::Plan(format!(
                "{} takes one argument",
                self.name
            )));
        };
        match (self.argument)(t) {
            Some(t) => Ok(vec![t]),
            None => Err(DataFusionError::Plan(format!(
                "function {}({}) does not exist",
                self.name,
                super::convert::sql_type(t)
            ))),
        }
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match (self.result, args) {
            (Some(result), [t]) => Ok(result(t)),
            _ => self.inner.inner().return_type(args),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.inner.inner().accumulator(args)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.inner().state_fields(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner.inner().groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        self.inner.inner().create_groups_accumulator(args)
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.inner.inner().create_sliding_accumulator(args)
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }

    fn default_value(&self, data_type: &DataType) -> Result<ScalarValue> {
        self.inner.inner().default_value(data_type)
    }
}

/// The message and SQLSTATE (21000) PostgreSQL gives a scalar subquery
/// that returned more than one row.
pub const MORE_THAN_ONE_ROW: &str =
    "more than one row returned by a subquery used as an expression";

/// `eddy_single(x)`: the one value of a scalar subquery — NULL for no row,
/// an error for more than one. DataFusion runs only aggregated correlated
/// subqueries; [`super::rewrite`] wraps a plain one's column in this.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Single {
    signature: Signature,
}

impl Single {
    pub fn udaf() -> AggregateUDF {
        AggregateUDF::new_from_impl(Single {
            signature: Signature::any(1, Volatility::Immutable),
        })
    }
}

impl AggregateUDFImpl for Single {
    fn name(&self) -> &str {
        "eddy_single"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args.first().cloned().unwrap_or(DataType::Null))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(SingleAccumulator {
            value: ScalarValue::try_from(args.return_field.data_type())?,
            rows: 0,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(datafusion::arrow::datatypes::Field::new(
                format!("{}[value]", args.name),
                args.return_field.data_type().clone(),
                true,
            )),
            Arc::new(datafusion::arrow::datatypes::Field::new(
                format!("{}[rows]", args.name),
                DataType::Int64,
                false,
            )),
        ])
    }
}

#[derive(Debug)]
struct SingleAccumulator {
    value: ScalarValue,
    rows: i64,
}

impl SingleAccumulator {
    fn add(&mut self, value: ScalarValue, rows: i64) -> Result<()> {
        if rows == 0 {
            return Ok(());
        }
        self.rows += rows;
        if self.rows > 1 {
            return Err(DataFusionError::Execution(MORE_THAN_ONE_ROW.into()));
        }
        self.value = value;
        Ok(())
    }
}

impl Accumulator for SingleAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(column) = values.first() else {
            return Ok(());
        };
        for i in 0..column.len() {
            self.add(ScalarValue::try_from_array(column, i)?, 1)?;
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [values, rows] = states else {
            return Err(DataFusionError::Internal("eddy_single state".into()));
        };
        let rows = rows
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Int64Array>();
        for i in 0..values.len() {
            let n = rows.map_or(0, |r| r.value(i));
            self.add(ScalarValue::try_from_array(values, i)?, n)?;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            self.value.clone(),
            ScalarValue::Int64(Some(self.rows)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.value.clone())
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.value.size()
    }
}
