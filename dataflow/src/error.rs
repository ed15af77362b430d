//! Errors of the dataflow. None of these is the user's fault except where a
//! variant says so; they stop a view task, which reports its state.

use common::{SqlState, UserError};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum DataflowError {
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("could not create topic {topic}: {code}")]
    TopicCreate {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("topic \"{0}\" does not exist")]
    MissingTopic(String),
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error("corrupt state of view {view}: {reason}")]
    CorruptState { view: String, reason: String },
    #[error("timed out after {0:?} waiting for the broker")]
    Timeout(std::time::Duration),
    /// A record too large for the brokers' limit: the caller skips it as a
    /// bad record rather than retrying what can never be written.
    #[error("the record is {bytes} bytes once encoded; Eddy's topics take at most {limit}")]
    RecordTooLarge { bytes: usize, limit: usize },
    #[error("evaluating view {view}: {source}")]
    Eval {
        view: String,
        source: planner::EvalError,
    },
}

impl UserError for DataflowError {
    fn sqlstate(&self) -> SqlState {
        match self {
            DataflowError::Eval { source, .. } => source.sqlstate(),
            _ => SqlState::Internal,
        }
    }
}
