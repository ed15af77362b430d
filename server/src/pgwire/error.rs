//! The one place a [`WireError`] becomes a Postgres ErrorResponse or
//! NoticeResponse.

use crate::session::WireError;
use pgwire::error::{ErrorInfo, PgWireError, SEVERITY_WARNING};
use pgwire::messages::response::NoticeResponse;

/// The error fields of `e`: SQLSTATE, message, detail, hint and position.
pub(super) fn error_info(e: &WireError, severity: &str) -> ErrorInfo {
    let mut info = ErrorInfo::new(
        severity.to_owned(),
        e.code.code().to_owned(),
        e.message.clone(),
    );
    info.detail = e.detail.clone();
    info.hint = e.hint.clone();
    info.position = e.position.map(|p| p.to_string());
    info
}

/// `e` as the error a pgwire handler returns.
pub(super) fn to_pg_error(e: &WireError, severity: &str) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(e, severity)))
}

/// `e` as a warning that does not end the statement.
pub(super) fn notice(e: &WireError) -> NoticeResponse {
    error_info(e, SEVERITY_WARNING).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::SqlState;

    #[test]
    fn every_field_reaches_the_error_response() {
        let mut e = WireError::new(SqlState::ReplicaUnavailable, "no replica")
            .with_detail("d")
            .with_hint("h");
        e.position = Some(7);
        let info = error_info(&e, "ERROR");
        assert_eq!(
            (
                info.code.as_str(),
                info.message.as_str(),
                info.detail.as_deref(),
                info.hint.as_deref()
            ),
            ("EY001", "no replica", Some("d"), Some("h"))
        );
        assert_eq!(info.position.as_deref(), Some("7"));
    }
}
