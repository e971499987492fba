//! A gRPC health client for the tests: Check and Watch through tonic-health's generated
//! client, List (gRPC proposal A90, which tonic-health lacks) on tonic's own client
//! machinery, as its code generator would write it. Every call is bounded in time.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use crate::common::bounded;

pub async fn channel(addr: SocketAddr) -> Channel {
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).expect("endpoint");
    bounded("connecting a gRPC client", endpoint.connect())
        .await
        .expect("gRPC connection")
}

pub async fn check(
    client: &mut HealthClient<Channel>,
    service: &str,
) -> Result<ServingStatus, Code> {
    let request = HealthCheckRequest {
        service: service.into(),
    };
    match bounded("Check", client.check(request)).await {
        Ok(response) => Ok(response.into_inner().status()),
        Err(status) => Err(status.code()),
    }
}

pub type WatchStream = tonic::Streaming<HealthCheckResponse>;

pub async fn watch(client: &mut HealthClient<Channel>, service: &str) -> WatchStream {
    let request = HealthCheckRequest {
        service: service.into(),
    };
    bounded("Watch", client.watch(request))
        .await
        .expect("Watch")
        .into_inner()
}

/// The next Watch message, or `None` when the stream ended well.
pub async fn next(stream: &mut WatchStream) -> Option<ServingStatus> {
    bounded("a Watch message", stream.message())
        .await
        .expect("the stream ends with grpc-status 0")
        .map(|m| m.status())
}

// A List client: the messages of gRPC proposal A90 and tonic's client machinery, as
// tonic's code generator would write them.

#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthListRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthListResponse {
    #[prost(btree_map = "string, message", tag = "1")]
    pub statuses: BTreeMap<String, HealthCheckResponse>,
}

pub async fn list(channel: Channel) -> Result<BTreeMap<String, ServingStatus>, Code> {
    let mut grpc = tonic::client::Grpc::new(channel);
    bounded("the channel", grpc.ready()).await.expect("ready");
    let path = PathAndQuery::from_static("/grpc.health.v1.Health/List");
    let call = grpc.unary(
        tonic::Request::new(HealthListRequest {}),
        path,
        tonic_prost::ProstCodec::<HealthListRequest, HealthListResponse>::default(),
    );
    match bounded("List", call).await {
        Ok(response) => Ok(response
            .into_inner()
            .statuses
            .into_iter()
            .map(|(name, status)| (name, status.status()))
            .collect()),
        Err(status) => Err(status.code()),
    }
}
