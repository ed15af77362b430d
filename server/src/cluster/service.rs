//! The internal service: Arrow Flight on a listener of its own
//! (`--internal-listen`), where nodes fetch rows of each other's replicas as
//! Arrow batches. A `DoGet` ticket is a [`Request`]; the answer is the
//! stream of its batches, or a [`Refusal`] in the error's details.
//!
//! The service speaks mutual TLS with the cluster's credentials
//! ([`super::credentials`]): a process that does not hold the cluster's key
//! cannot complete a handshake, so it can neither call nor impersonate a
//! node, and no secret travels in a request. Clients of the Postgres port
//! cannot reach this service through it.

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tonic::{Request as GrpcRequest, Response, Status, Streaming};

use super::internal::{self, Refusal, Request};
use crate::error::Error;
use crate::handler::Database;
use crate::query::convert;

/// The largest message either side accepts: a batch of wide rows.
pub const MAX_MESSAGE_BYTES: usize = 256 << 20;

impl Refusal {
    /// The refusal as a gRPC status, typed in its details.
    pub fn into_status(self) -> Status {
        let code = match &self {
            Refusal::Malformed(_) => tonic::Code::InvalidArgument,
            Refusal::Unavailable { .. } => tonic::Code::FailedPrecondition,
            Refusal::Failed { .. } => tonic::Code::Internal,
        };
        let details = serde_json::to_vec(&self).unwrap_or_default();
        Status::with_details(code, self.to_string(), details.into())
    }

    /// The refusal a status carries, if it carries one.
    pub fn from_status(status: &Status) -> Option<Refusal> {
        serde_json::from_slice(status.details()).ok()
    }
}

/// Serves the internal service on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    db: Arc<Database>,
    tls: tonic::transport::ServerTlsConfig,
    shutdown: impl Future<Output = ()> + Send,
) {
    let service = FlightServiceServer::new(Service { db })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let mut server = match tonic::transport::Server::builder().tls_config(tls) {
        Ok(server) => server,
        Err(e) => {
            tracing::error!(error = %e, "the internal service cannot start TLS");
            return;
        }
    };
    if let Err(e) = server
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
    {
        tracing::error!(error = %e, "the internal service stopped");
    }
}

struct Service {
    db: Arc<Database>,
}

impl Service {
    /// The batches answering `request`, as Flight data.
    fn answer(
        &self,
        request: Request,
    ) -> Result<BoxStream<'static, Result<FlightData, Status>>, Error> {
        let (schema, batches) = match request {
            Request::Scan(scan) => {
                let view = internal::view_by_id(&self.db, scan.view)?;
                let schema = internal::scan_schema(&view, &scan)?;
                let span = tracing::debug_span!("internal scan", view = %view.def.name);
                let _enter = span.enter();
                (schema, internal::scan_local(&self.db, &view, &scan)?)
            }
            Request::Errors => {
                let columns = crate::system::columns(crate::system::SOURCE_ERRORS)
                    .ok_or_else(|| Error::internal("no source_errors table"))?;
                let rows = tokio::task::block_in_place(|| internal::serve_errors(&self.db))?;
                let schema = convert::schema(&columns);
                let all: Vec<usize> = (0..columns.len()).collect();
                let batch =
                    convert::to_batch(&schema, &columns, &all, &rows).map_err(Error::internal)?;
                (schema, futures::stream::iter([Ok(batch)]).boxed())
            }
        };
        let batches =
            batches.map_err(|e| FlightError::Tonic(Box::new(Refusal::from(e).into_status())));
        Ok(FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .with_max_flight_data_size(MAX_MESSAGE_BYTES / 4)
            .build(batches)
            .map_err(|e| match e {
                FlightError::Tonic(status) => *status,
                other => Status::internal(other.to_string()),
            })
            .boxed())
    }
}

fn unsupported<T>(what: &str) -> Result<T, Status> {
    Err(Status::unimplemented(format!(
        "the internal service answers DoGet only, not {what}"
    )))
}

#[tonic::async_trait]
impl FlightService for Service {
    type HandshakeStream = BoxStream<'static, Result<HandshakeResponse, Status>>;
    type ListFlightsStream = BoxStream<'static, Result<FlightInfo, Status>>;
    type DoGetStream = BoxStream<'static, Result<FlightData, Status>>;
    type DoPutStream = BoxStream<'static, Result<PutResult, Status>>;
    type DoExchangeStream = BoxStream<'static, Result<FlightData, Status>>;
    type DoActionStream = BoxStream<'static, Result<arrow_flight::Result, Status>>;
    type ListActionsStream = BoxStream<'static, Result<ActionType, Status>>;

    async fn do_get(
        &self,
        request: GrpcRequest<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        let request =
            Request::decode(&request.into_inner().ticket).map_err(Refusal::into_status)?;
        self.answer(request)
            .map(Response::new)
            .map_err(|e| Refusal::from(e).into_status())
    }

    async fn handshake(
        &self,
        _: GrpcRequest<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        unsupported("Handshake")
    }

    async fn list_flights(
        &self,
        _: GrpcRequest<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        unsupported("ListFlights")
    }

    async fn get_flight_info(
        &self,
        _: GrpcRequest<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        unsupported("GetFlightInfo")
    }

    async fn poll_flight_info(
        &self,
        _: GrpcRequest<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        unsupported("PollFlightInfo")
    }

    async fn get_schema(
        &self,
        _: GrpcRequest<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        unsupported("GetSchema")
    }

    async fn do_put(
        &self,
        _: GrpcRequest<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        unsupported("DoPut")
    }

    async fn do_exchange(
        &self,
        _: GrpcRequest<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        unsupported("DoExchange")
    }

    async fn do_action(
        &self,
        _: GrpcRequest<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        unsupported("DoAction")
    }

    async fn list_actions(
        &self,
        _: GrpcRequest<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        unsupported("ListActions")
    }
}
