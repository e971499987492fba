//! The `grpc.health.v1` messages, written with `prost`'s derive from the protocol's own
//! `health.proto` (Check and Watch) and gRPC proposal A90 (List).

use std::collections::BTreeMap;

/// `grpc.health.v1.HealthCheckRequest`: the request of Check and Watch.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct HealthCheckRequest {
    /// The service whose status is asked for; `""` is the server as a whole.
    #[prost(string, tag = "1")]
    pub(crate) service: String,
}

/// `grpc.health.v1.HealthCheckResponse`: the answer of Check, and each message of Watch.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub(crate) struct HealthCheckResponse {
    #[prost(enumeration = "ServingStatus", tag = "1")]
    pub(crate) status: i32,
}

impl HealthCheckResponse {
    pub(crate) fn new(status: ServingStatus) -> Self {
        HealthCheckResponse {
            status: status as i32,
        }
    }
}

/// `grpc.health.v1.HealthCheckResponse.ServingStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub(crate) enum ServingStatus {
    Unknown = 0,
    Serving = 1,
    NotServing = 2,
    /// Only ever sent by Watch, for a name the server does not know.
    ServiceUnknown = 3,
}

/// `grpc.health.v1.HealthListRequest` (A90): no fields.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub(crate) struct HealthListRequest {}

/// `grpc.health.v1.HealthListResponse` (A90): every known name and its status.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct HealthListResponse {
    #[prost(btree_map = "string, message", tag = "1")]
    pub(crate) statuses: BTreeMap<String, HealthCheckResponse>,
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn the_bytes_match_the_proto_encoding() {
        // Field 1, wire type 2 (length-delimited), then the UTF-8 bytes.
        let request = HealthCheckRequest {
            service: "db".into(),
        };
        assert_eq!(request.encode_to_vec(), [0x0a, 2, b'd', b'b']);
        // Field 1, wire type 0 (varint); proto3 leaves the default (UNKNOWN = 0) out.
        let serving = HealthCheckResponse::new(ServingStatus::Serving);
        assert_eq!(serving.encode_to_vec(), [0x08, 1]);
        assert_eq!(
            HealthCheckResponse::new(ServingStatus::ServiceUnknown).encode_to_vec(),
            [0x08, 3]
        );
        assert!(HealthCheckResponse::new(ServingStatus::Unknown)
            .encode_to_vec()
            .is_empty());
        // A map entry is a nested message: key (1) and value (2).
        let list = HealthListResponse {
            statuses: BTreeMap::from([("a".to_owned(), serving)]),
        };
        assert_eq!(
            list.encode_to_vec(),
            [0x0a, 7, 0x0a, 1, b'a', 0x12, 2, 0x08, 1]
        );
    }

    #[test]
    fn unknown_fields_are_skipped() {
        // Field 1 = "x", then field 7 (varint 5) and field 9 (bytes "zz") that no version
        // of the proto has.
        let bytes = [0x0a, 1, b'x', 0x38, 5, 0x4a, 2, b'z', b'z'];
        let request = HealthCheckRequest::decode(&bytes[..]).unwrap();
        assert_eq!(request.service, "x");
        assert_eq!(
            HealthListRequest::decode(&bytes[..]).unwrap(),
            HealthListRequest {}
        );
    }
}
