//! Session variables: what `SET`, `SHOW`, `RESET` and the startup packet act on.
//!
//! Every variable is declared once, in [`VARS`]: its name, description, default
//! and parser. Nothing else in the server lists variable names; the pgwire layer
//! asks [`SessionVars::reported`] which ones to announce with `ParameterStatus`.
//!
//! Invariant: a stored value has always been through its variable's parser, so
//! the typed accessors ([`SessionVars::max_staleness`], ...) never fail.

use super::cursors::Cursors;
use super::WireError;
use common::{SqlState, UserError};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Defaults that come from server flags rather than from this file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VarDefaults {
    pub max_staleness: Duration,
}

impl Default for VarDefaults {
    fn default() -> Self {
        VarDefaults {
            max_staleness: Duration::ZERO,
        }
    }
}

/// Which replica of a partition a read prefers (`replica_preference`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplicaPreference {
    /// The active replica when it is within `max_staleness`, else the freshest
    /// standby within it.
    Active,
    /// Any replica within `max_staleness`, whichever the router finds best.
    Any,
}

impl fmt::Display for ReplicaPreference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReplicaPreference::Active => "active",
            ReplicaPreference::Any => "any",
        })
    }
}

/// Why a `SET`, `SHOW` or `RESET` of a variable failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VarError {
    #[error("unrecognized configuration parameter \"{name}\"")]
    Unknown { name: String },
    #[error("invalid value for parameter \"{name}\": \"{value}\"")]
    InvalidValue {
        name: &'static str,
        value: String,
        detail: Option<String>,
        hint: Option<String>,
    },
    #[error("parameter \"{name}\" cannot be changed")]
    ReadOnly { name: &'static str },
}

impl UserError for VarError {
    fn sqlstate(&self) -> SqlState {
        match self {
            VarError::Unknown { .. } => SqlState::UndefinedObject,
            VarError::InvalidValue { .. } => SqlState::InvalidParameterValue,
            // Postgres answers 55P02 (cant_change_runtime_param), of the same class.
            VarError::ReadOnly { .. } => SqlState::ObjectNotInPrerequisiteState,
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            VarError::InvalidValue { detail, .. } => detail.clone(),
            _ => None,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            VarError::InvalidValue { hint, .. } => hint.clone(),
            VarError::Unknown { .. } => Some("SHOW ALL lists every parameter".to_owned()),
            VarError::ReadOnly { .. } => None,
        }
    }
}

impl From<VarError> for WireError {
    fn from(e: VarError) -> WireError {
        WireError::from_user_error(&e)
    }
}

/// One row of `SHOW ALL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShowRow {
    pub name: &'static str,
    pub setting: String,
    pub description: &'static str,
}

/// A parsed value. Each variable always holds the same variant.
#[derive(Debug, Clone, PartialEq)]
enum VarValue {
    Duration(Duration),
    Replica(ReplicaPreference),
    Int(i64),
    Text(String),
}

impl fmt::Display for VarValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VarValue::Duration(d) => f.write_str(&format_duration(*d)),
            VarValue::Replica(r) => r.fmt(f),
            VarValue::Int(i) => i.fmt(f),
            VarValue::Text(s) => f.write_str(s),
        }
    }
}

/// Why a value was rejected; the variable's name is added by the caller.
struct Invalid {
    detail: Option<String>,
    hint: Option<String>,
}

impl Invalid {
    fn hint(hint: &str) -> Invalid {
        Invalid {
            detail: None,
            hint: Some(hint.to_owned()),
        }
    }
}

type Parser = fn(&str) -> Result<VarValue, Invalid>;

/// The declaration of one variable.
struct VarDef {
    name: &'static str,
    description: &'static str,
    default: fn(&VarDefaults) -> VarValue,
    /// `None` for a read-only variable.
    parse: Option<Parser>,
    /// Announced to the client with `ParameterStatus` at startup and on change.
    reported: bool,
}

fn text(s: &str) -> VarValue {
    VarValue::Text(s.to_owned())
}

/// Every session variable, in `SHOW ALL` order.
static VARS: &[VarDef] = &[
    VarDef {
        name: "max_staleness",
        description: "How far behind its changelog a replica may be and still answer a read: '500ms', '2s', '1min' or 0 (only fully caught-up replicas).",
        default: |d| VarValue::Duration(d.max_staleness),
        parse: Some(|s| parse_duration(s).map(VarValue::Duration)),
        reported: false,
    },
    VarDef {
        name: "replica_preference",
        description: "Which replica answers a read: 'active' prefers the primary, 'any' takes any replica within max_staleness.",
        default: |_| VarValue::Replica(ReplicaPreference::Active),
        parse: Some(parse_replica_preference),
        reported: false,
    },
    VarDef {
        name: "application_name",
        description: "Sets the application name to be reported in statistics and logs.",
        default: |_| text(""),
        parse: Some(|s| Ok(text(s))),
        reported: true,
    },
    VarDef {
        name: "client_encoding",
        description: "Sets the client's character set encoding (UTF8 only).",
        default: |_| text("UTF8"),
        parse: Some(parse_client_encoding),
        reported: true,
    },
    VarDef {
        name: "DateStyle",
        description: "Sets the display format for date and time values (ISO only).",
        default: |_| text("ISO, MDY"),
        parse: Some(parse_date_style),
        reported: true,
    },
    VarDef {
        name: "TimeZone",
        description: "Sets the time zone for displaying and interpreting time stamps (UTC only).",
        default: |_| text("UTC"),
        parse: Some(parse_time_zone),
        reported: true,
    },
    VarDef {
        name: "extra_float_digits",
        description: "Sets the number of digits displayed for floating-point values (accepted for compatibility; floats are always shown in their shortest exact form).",
        default: |_| VarValue::Int(1),
        parse: Some(parse_extra_float_digits),
        reported: false,
    },
    VarDef {
        name: "search_path",
        description: "Sets the schema search order for names that are not schema-qualified.",
        default: |_| text("public"),
        parse: Some(|s| Ok(text(s))),
        reported: false,
    },
    VarDef {
        name: "standard_conforming_strings",
        description: "Causes '...' strings to treat backslashes literally (on only).",
        default: |_| text("on"),
        parse: Some(parse_on_only),
        reported: true,
    },
    VarDef {
        name: "statement_timeout",
        description: "Sets the maximum allowed duration of any statement: '500ms', '2s', '1min' or 0 (no limit).",
        default: |_| VarValue::Duration(Duration::ZERO),
        parse: Some(|s| parse_duration(s).map(VarValue::Duration)),
        reported: false,
    },
    VarDef {
        name: "transaction_isolation",
        description: "Shows the current transaction's isolation level.",
        default: |_| text("read committed"),
        parse: None,
        reported: false,
    },
    VarDef {
        name: "password_encryption",
        description: "How passwords are stored: always as SCRAM-SHA-256 verifiers (psql's \\password reads this).",
        default: |_| text("scram-sha-256"),
        parse: None,
        reported: false,
    },
    VarDef {
        name: "server_version",
        description: "Shows the Postgres version the server is compatible with.",
        default: |_| text("15.0"),
        parse: None,
        reported: true,
    },
    VarDef {
        name: "server_version_num",
        description: "Shows the Postgres version the server is compatible with, as an integer.",
        default: |_| VarValue::Int(150000),
        parse: None,
        reported: false,
    },
    VarDef {
        name: "server_encoding",
        description: "Shows the server (database) character set encoding.",
        default: |_| text("UTF8"),
        parse: None,
        reported: true,
    },
    VarDef {
        name: "default_table_access_method",
        description: "Shows the access method new tables get (SQLAlchemy reads it; Eddy has no tables of its own).",
        default: |_| text("heap"),
        parse: None,
        reported: false,
    },
    VarDef {
        name: "integer_datetimes",
        description: "Shows whether datetimes are integer based.",
        default: |_| text("on"),
        parse: None,
        reported: true,
    },
];

fn find(name: &str) -> Option<(usize, &'static VarDef)> {
    VARS.iter()
        .enumerate()
        .find(|(_, def)| def.name.eq_ignore_ascii_case(name))
}

fn unknown(name: &str) -> VarError {
    VarError::Unknown {
        name: name.to_owned(),
    }
}

/// The variables of one session.
#[derive(Debug, Clone)]
pub struct SessionVars {
    defaults: VarDefaults,
    /// One value per entry of [`VARS`], same order.
    values: Vec<VarValue>,
    /// Bumped by every change, so the wire layer can tell cheaply whether a
    /// statement changed anything it must report.
    generation: u64,
    /// Not a variable, but per-session state that the same statements
    /// reach: the open cursors and the transaction block they live in.
    cursors: Cursors,
    /// The settings a transaction block goes back to, while one is open.
    block: Option<BlockSettings>,
    /// The role the session authenticated as.
    user: String,
}

/// What the end of a transaction block restores: ROLLBACK the settings
/// as they were at its start, COMMIT the settings as `SET` (not `SET
/// LOCAL`) left them.
#[derive(Debug, Clone)]
struct BlockSettings {
    at_begin: Vec<VarValue>,
    session: Vec<VarValue>,
}

/// Two sessions are equal when their settings are; how many changes led
/// there is bookkeeping.
impl PartialEq for SessionVars {
    fn eq(&self, other: &SessionVars) -> bool {
        self.defaults == other.defaults && self.values == other.values
    }
}

impl SessionVars {
    pub fn new(defaults: VarDefaults) -> SessionVars {
        let values = VARS.iter().map(|def| (def.default)(&defaults)).collect();
        SessionVars {
            defaults,
            values,
            generation: 0,
            cursors: Cursors::default(),
            block: None,
            user: crate::access::BOOTSTRAP_ROLE.to_owned(),
        }
    }

    /// The role the session authenticated as (`current_user`).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Set once, when the connection has authenticated.
    pub fn set_user(&mut self, user: &str) {
        user.clone_into(&mut self.user);
    }

    /// The variable's proper spelling (`timezone` → `TimeZone`), as `SHOW`
    /// names its column; `None` when there is no such variable.
    pub fn canonical_name(name: &str) -> Option<&'static str> {
        find(name).map(|(_, def)| def.name)
    }

    /// The setting as `SHOW name` prints it. Names are case-insensitive.
    pub fn get(&self, name: &str) -> Result<String, VarError> {
        let (idx, _) = find(name).ok_or_else(|| unknown(name))?;
        Ok(self.values[idx].to_string())
    }

    /// `SET name = value`; `value` is the unquoted text (`500ms`, not `'500ms'`).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), VarError> {
        self.set_scoped(name, value, false).map(|_| ())
    }

    /// `SET [LOCAL] name = value`, returning the setting as `SHOW` would
    /// now print it (what `set_config` returns). A `LOCAL` setting lasts
    /// until the transaction block ends; outside one it changes nothing
    /// beyond the statement, as in PostgreSQL.
    pub fn set_scoped(&mut self, name: &str, value: &str, local: bool) -> Result<String, VarError> {
        let (idx, def) = find(name).ok_or_else(|| unknown(name))?;
        let parse = def.parse.ok_or(VarError::ReadOnly { name: def.name })?;
        let parsed = parse(value).map_err(|invalid| VarError::InvalidValue {
            name: def.name,
            value: value.to_owned(),
            detail: invalid.detail,
            hint: invalid.hint,
        })?;
        let shown = parsed.to_string();
        self.assign(idx, parsed, local);
        Ok(shown)
    }

    /// `RESET name` (also `SET name TO DEFAULT`).
    pub fn reset(&mut self, name: &str) -> Result<(), VarError> {
        self.reset_scoped(name, false)
    }

    /// `SET [LOCAL] name TO DEFAULT`.
    pub fn reset_scoped(&mut self, name: &str, local: bool) -> Result<(), VarError> {
        let (idx, def) = find(name).ok_or_else(|| unknown(name))?;
        if def.parse.is_none() {
            return Err(VarError::ReadOnly { name: def.name });
        }
        self.assign(idx, (def.default)(&self.defaults), local);
        Ok(())
    }

    fn assign(&mut self, idx: usize, value: VarValue, local: bool) {
        match (&mut self.block, local) {
            // Outside a block, the statement is the transaction.
            (None, true) => return,
            (Some(block), false) => block.session[idx] = value.clone(),
            _ => {}
        }
        self.values[idx] = value;
        self.generation += 1;
    }

    /// `BEGIN`, or the start of a multi-statement simple query
    /// (`implicit`) outside a block.
    pub fn begin(&mut self, implicit: bool) {
        self.cursors.begin(implicit);
        if self.block.is_none() {
            self.block = Some(BlockSettings {
                at_begin: self.values.clone(),
                session: self.values.clone(),
            });
        }
    }

    /// The block commits: cursors without `WITH HOLD` close and `SET
    /// LOCAL` settings end.
    pub fn commit(&mut self) {
        self.cursors.commit();
        if let Some(block) = self.block.take() {
            self.restore(block.session);
        }
    }

    /// The block rolls back: its cursors close and every setting it made
    /// is undone.
    pub fn rollback(&mut self) {
        self.cursors.rollback();
        if let Some(block) = self.block.take() {
            self.restore(block.at_begin);
        }
    }

    fn restore(&mut self, values: Vec<VarValue>) {
        if self.values != values {
            self.values = values;
            self.generation += 1;
        }
    }

    /// Changes whenever any setting does.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The reported parameters, if any setting changed since `generation`.
    pub fn reported_since(&self, generation: u64) -> Option<BTreeMap<&'static str, String>> {
        (self.generation != generation).then(|| self.reported())
    }

    /// `RESET ALL`.
    pub fn reset_all(&mut self) {
        let generation = self.generation + 1;
        let cursors = std::mem::take(&mut self.cursors);
        let block = self.block.take();
        *self = SessionVars::new(self.defaults);
        self.generation = generation;
        // RESET ALL leaves cursors open, as in PostgreSQL, and is undone
        // by a ROLLBACK of the block it ran in.
        self.cursors = cursors;
        self.block = block.map(|b| BlockSettings {
            at_begin: b.at_begin,
            session: self.values.clone(),
        });
    }

    /// `SHOW ALL`: every variable with its setting and description.
    pub fn show_all(&self) -> Vec<ShowRow> {
        VARS.iter()
            .zip(&self.values)
            .map(|(def, value)| ShowRow {
                name: def.name,
                setting: value.to_string(),
                description: def.description,
            })
            .collect()
    }

    /// The variables a client is told about with `ParameterStatus`, with their
    /// current settings.
    pub fn reported(&self) -> BTreeMap<&'static str, String> {
        VARS.iter()
            .zip(&self.values)
            .filter(|(def, _)| def.reported)
            .map(|(def, value)| (def.name, value.to_string()))
            .collect()
    }

    /// Applies the parameters of a startup packet. `options` is split into its
    /// `-c name=value` / `--name=value` settings; `user`, `database` and
    /// `replication` are not variables and are skipped, as are other names
    /// Eddy does not know (drivers send many).
    ///
    /// Returns `Err` for a bad setting the user asked for in `options` (the
    /// connection should fail, as in Postgres); problems with the other
    /// parameters, which drivers set on their own, come back as warnings and
    /// leave the variable at its default.
    pub fn apply_startup<'a>(
        &mut self,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Vec<VarError>, VarError> {
        let mut warnings = Vec::new();
        let mut options = None;
        for (name, value) in params {
            match name {
                "options" => options = Some(value),
                "user" | "database" | "replication" => {}
                _ if find(name).is_none() => {}
                _ => {
                    if let Err(e) = self.set(name, value) {
                        warnings.push(e);
                    }
                }
            }
        }
        // `options` last: what the user typed wins over what the driver sent.
        if let Some(options) = options {
            for (name, value) in parse_options(options)? {
                self.set(&name, &value)?;
            }
        }
        Ok(warnings)
    }

    pub fn max_staleness(&self) -> Duration {
        self.duration("max_staleness")
    }

    pub fn statement_timeout(&self) -> Duration {
        self.duration("statement_timeout")
    }

    pub fn replica_preference(&self) -> ReplicaPreference {
        match self.value("replica_preference") {
            VarValue::Replica(r) => *r,
            other => unreachable!("replica_preference holds {other:?}"),
        }
    }

    pub fn application_name(&self) -> String {
        self.value("application_name").to_string()
    }

    /// The session's open cursors (see [`Cursors`]).
    pub fn cursors(&self) -> &Cursors {
        &self.cursors
    }

    pub fn cursors_mut(&mut self) -> &mut Cursors {
        &mut self.cursors
    }

    fn duration(&self, name: &str) -> Duration {
        match self.value(name) {
            VarValue::Duration(d) => *d,
            other => unreachable!("{name} holds {other:?}"),
        }
    }

    fn value(&self, name: &str) -> &VarValue {
        let (idx, _) = find(name).expect("variable declared in VARS");
        &self.values[idx]
    }
}

/// Splits a startup `options` string (as `PGOPTIONS` sends it) into settings:
/// `-c name=value`, `-cname=value` and `--name=value`, separated by spaces;
/// a backslash escapes the next character (a space inside a value).
fn parse_options(options: &str) -> Result<Vec<(String, String)>, VarError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }

    let invalid = |w: &str| VarError::InvalidValue {
        name: "options",
        value: w.to_owned(),
        detail: None,
        hint: Some("use -c name=value, e.g. PGOPTIONS='-c max_staleness=2s'".to_owned()),
    };
    let mut settings = Vec::new();
    let mut words = words.into_iter();
    while let Some(w) = words.next() {
        let setting = if w == "-c" {
            words.next().ok_or_else(|| invalid(&w))?
        } else if let Some(rest) = w.strip_prefix("--") {
            rest.to_owned()
        } else if let Some(rest) = w.strip_prefix("-c") {
            rest.to_owned()
        } else {
            return Err(invalid(&w));
        };
        let (name, value) = setting.split_once('=').ok_or_else(|| invalid(&setting))?;
        // Postgres accepts dashes for underscores in command-line names.
        settings.push((name.replace('-', "_"), value.to_owned()));
    }
    Ok(settings)
}

const DURATION_HINT: &str = "use a number with a unit: '500ms', '2s', '1min', or 0";

/// `500ms`, `2s`, `1min`, `0`; a bare number is milliseconds, as for Postgres'
/// millisecond settings. Fractions are rounded to the millisecond.
fn parse_duration(s: &str) -> Result<Duration, Invalid> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let millis_per_unit = match unit.trim() {
        "" | "ms" => 1.0,
        "s" => 1_000.0,
        "min" => 60_000.0,
        _ => return Err(Invalid::hint(DURATION_HINT)),
    };
    let n: f64 = number.parse().map_err(|_| Invalid::hint(DURATION_HINT))?;
    let millis = (n * millis_per_unit).round();
    // About 24 days, Postgres' limit for millisecond settings (i32 ms).
    if !millis.is_finite() || millis > f64::from(i32::MAX) {
        return Err(Invalid {
            detail: Some("the largest accepted value is 2147483647ms (about 24 days)".to_owned()),
            hint: Some(DURATION_HINT.to_owned()),
        });
    }
    Ok(Duration::from_millis(millis as u64))
}

/// The shortest exact form: `0`, `250ms`, `2s`, `1min`.
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    // Remainders bound first: `is_multiple_of` is newer than the workspace MSRV.
    let (sub_minute, sub_second) = (ms % 60_000, ms % 1_000);
    if ms == 0 {
        "0".to_owned()
    } else if sub_minute == 0 {
        format!("{}min", ms / 60_000)
    } else if sub_second == 0 {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

fn parse_replica_preference(s: &str) -> Result<VarValue, Invalid> {
    match s.trim().to_ascii_lowercase().as_str() {
        "active" => Ok(VarValue::Replica(ReplicaPreference::Active)),
        "any" => Ok(VarValue::Replica(ReplicaPreference::Any)),
        _ => Err(Invalid::hint("use 'active' or 'any'")),
    }
}

fn parse_client_encoding(s: &str) -> Result<VarValue, Invalid> {
    match s
        .trim()
        .to_ascii_uppercase()
        .replace(['-', '_'], "")
        .as_str()
    {
        "UTF8" | "UNICODE" => Ok(text("UTF8")),
        _ => Err(Invalid::hint(
            "Eddy speaks UTF8 only: SET client_encoding = 'UTF8'",
        )),
    }
}

/// `ISO`, `ISO, MDY`, `DMY, ISO`...: the output style must be ISO (dates are
/// always written `YYYY-MM-DD`); the field order only matters for input.
fn parse_date_style(s: &str) -> Result<VarValue, Invalid> {
    let mut order = "MDY";
    for part in s.split(',').map(|p| p.trim().to_ascii_uppercase()) {
        match part.as_str() {
            "ISO" | "" => {}
            "MDY" | "US" | "NONEURO" | "NONEUROPEAN" => order = "MDY",
            "DMY" | "EURO" | "EUROPEAN" => order = "DMY",
            "YMD" => order = "YMD",
            _ => {
                return Err(Invalid::hint(
                    "Eddy writes dates in ISO style only: SET DateStyle = 'ISO, MDY'",
                ))
            }
        }
    }
    Ok(VarValue::Text(format!("ISO, {order}")))
}

fn parse_time_zone(s: &str) -> Result<VarValue, Invalid> {
    match s.trim().to_ascii_uppercase().as_str() {
        "UTC" | "ETC/UTC" | "GMT" | "ETC/GMT" | "UCT" | "ETC/UCT" | "Z" | "ZULU" | "UNIVERSAL"
        | "ETC/UNIVERSAL" | "+00" | "+00:00" | "-00" | "00:00" | "0" | "UTC0" | "GMT0" => {
            Ok(text("UTC"))
        }
        _ => Err(Invalid {
            detail: Some("timestamp with time zone values are always shown in UTC".to_owned()),
            hint: Some("SET TimeZone = 'UTC'".to_owned()),
        }),
    }
}

fn parse_extra_float_digits(s: &str) -> Result<VarValue, Invalid> {
    match s.trim().parse::<i64>() {
        Ok(n) if (-15..=3).contains(&n) => Ok(VarValue::Int(n)),
        _ => Err(Invalid::hint("use an integer from -15 to 3")),
    }
}

fn parse_on_only(s: &str) -> Result<VarValue, Invalid> {
    match s.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(text("on")),
        _ => Err(Invalid::hint("only 'on' is supported")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> SessionVars {
        SessionVars::new(VarDefaults {
            max_staleness: Duration::from_millis(250),
        })
    }

    #[test]
    fn max_staleness_accepts_documented_forms() {
        let mut v = vars();
        assert_eq!(v.max_staleness(), Duration::from_millis(250));
        assert_eq!(v.get("max_staleness").unwrap(), "250ms");
        for (input, ms, shown) in [
            ("500ms", 500, "500ms"),
            ("2s", 2_000, "2s"),
            ("1min", 60_000, "1min"),
            ("0", 0, "0"),
            (" 750 ", 750, "750ms"),
            ("1.5s", 1_500, "1500ms"),
            ("90s", 90_000, "90s"),
            ("2 S", 2_000, "2s"),
        ] {
            v.set("max_staleness", input).unwrap();
            assert_eq!(v.max_staleness(), Duration::from_millis(ms), "{input}");
            assert_eq!(v.get("MAX_STALENESS").unwrap(), shown, "{input}");
        }
    }

    #[test]
    fn max_staleness_rejects_other_forms_with_a_hint() {
        let mut v = vars();
        for bad in ["", "abc", "-1s", "5 hours", "1h", "1e3ms", "99999999999"] {
            let err = v.set("max_staleness", bad).unwrap_err();
            assert_eq!(err.sqlstate(), SqlState::InvalidParameterValue, "{bad}");
            assert!(
                err.hint().unwrap().contains("'500ms', '2s', '1min', or 0"),
                "{bad}"
            );
        }
        assert_eq!(
            v.max_staleness(),
            Duration::from_millis(250),
            "a failed SET changes nothing"
        );
        let wire = WireError::from(v.set("max_staleness", "soon").unwrap_err());
        assert_eq!(wire.code.code(), "22023");
        assert_eq!(
            wire.message,
            "invalid value for parameter \"max_staleness\": \"soon\""
        );
    }

    #[test]
    fn unknown_and_read_only_variables() {
        let mut v = vars();
        let err = v.set("no_such_thing", "1").unwrap_err();
        assert_eq!(err.sqlstate().code(), "42704");
        assert_eq!(
            err.to_string(),
            "unrecognized configuration parameter \"no_such_thing\""
        );
        assert_eq!(
            v.get("nope").unwrap_err().sqlstate(),
            SqlState::UndefinedObject
        );
        assert_eq!(
            v.reset("nope").unwrap_err().sqlstate(),
            SqlState::UndefinedObject
        );
        assert!(matches!(
            v.set("server_version", "16"),
            Err(VarError::ReadOnly { .. })
        ));
        assert_eq!(v.get("server_version").unwrap(), "15.0");
    }

    #[test]
    fn reset_restores_the_server_default() {
        let mut v = vars();
        v.set("max_staleness", "2s").unwrap();
        v.set("replica_preference", "ANY").unwrap();
        assert_eq!(v.replica_preference(), ReplicaPreference::Any);
        v.reset("max_staleness").unwrap();
        assert_eq!(v.max_staleness(), Duration::from_millis(250));
        assert_eq!(v.replica_preference(), ReplicaPreference::Any);
        v.set("application_name", "psql").unwrap();
        v.reset_all();
        assert_eq!(v, vars());
    }

    #[test]
    fn cosmetic_variables_normalize_or_refuse() {
        let mut v = vars();
        v.set("client_encoding", "utf-8").unwrap();
        assert_eq!(v.get("client_encoding").unwrap(), "UTF8");
        assert!(v.set("client_encoding", "LATIN1").is_err());
        v.set("datestyle", "iso").unwrap();
        assert_eq!(v.get("DateStyle").unwrap(), "ISO, MDY");
        v.set("DateStyle", "ISO, DMY").unwrap();
        assert_eq!(v.get("datestyle").unwrap(), "ISO, DMY");
        assert!(v.set("DateStyle", "German").is_err());
        v.set("timezone", "Etc/UTC").unwrap();
        assert_eq!(v.get("TimeZone").unwrap(), "UTC");
        assert!(v.set("TimeZone", "Europe/Paris").is_err());
        v.set("extra_float_digits", "3").unwrap();
        assert!(v.set("extra_float_digits", "4").is_err());
        assert!(v.set("standard_conforming_strings", "off").is_err());
        assert_eq!(SessionVars::canonical_name("timezone"), Some("TimeZone"));
        assert_eq!(SessionVars::canonical_name("x"), None);
    }

    #[test]
    fn show_all_and_reported_parameters() {
        let v = vars();
        let all = v.show_all();
        assert_eq!(all.len(), VARS.len());
        assert_eq!(all[0].name, "max_staleness");
        assert!(all.iter().all(|r| !r.description.is_empty()));
        let reported = v.reported();
        assert_eq!(reported["server_version"], "15.0");
        assert_eq!(reported["DateStyle"], "ISO, MDY");
        assert_eq!(reported["integer_datetimes"], "on");
        assert!(reported.contains_key("application_name"));
        assert!(!reported.contains_key("max_staleness"));
    }

    #[test]
    fn names_are_declared_once() {
        for (i, def) in VARS.iter().enumerate() {
            assert!(
                VARS[i + 1..]
                    .iter()
                    .all(|other| !other.name.eq_ignore_ascii_case(def.name)),
                "{} declared twice",
                def.name
            );
            if let Some(parse) = def.parse {
                let default = (def.default)(&VarDefaults::default()).to_string();
                assert!(
                    parse(&default).is_ok(),
                    "{}'s default does not parse",
                    def.name
                );
            }
        }
    }

    #[test]
    fn startup_parameters_and_options() {
        let mut v = vars();
        let warnings = v
            .apply_startup([
                ("user", "alice"),
                ("database", "eddy"),
                ("application_name", "psql"),
                ("client_encoding", "UTF8"),
                ("TimeZone", "Europe/Berlin"),
                ("geqo", "off"),
                (
                    "options",
                    "-c max_staleness=2s --replica-preference=any -capplication_name=my\\ app",
                ),
            ])
            .unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].to_string().contains("TimeZone"));
        assert_eq!(v.max_staleness(), Duration::from_secs(2));
        assert_eq!(v.replica_preference(), ReplicaPreference::Any);
        assert_eq!(v.application_name(), "my app");
        assert_eq!(v.get("TimeZone").unwrap(), "UTC");

        let mut v = vars();
        let err = v
            .apply_startup([("options", "-c max_staleness=soon")])
            .unwrap_err();
        assert_eq!(err.sqlstate(), SqlState::InvalidParameterValue);
        let err = v.apply_startup([("options", "-c bogus=1")]).unwrap_err();
        assert_eq!(err.sqlstate(), SqlState::UndefinedObject);
        let err = v
            .apply_startup([("options", "max_staleness=1s")])
            .unwrap_err();
        assert_eq!(err.sqlstate(), SqlState::InvalidParameterValue);
        assert!(v.apply_startup([("options", "")]).unwrap().is_empty());
    }
}
