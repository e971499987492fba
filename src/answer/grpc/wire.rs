//! gRPC on HTTP/2, as far as a health service needs it: the request's content type and
//! encoding, the 5-byte prefix of a length-prefixed message, the one message of a unary
//! request read from body chunks as they arrive, the response's frames and its trailers.
//!
//! Reading never trusts the declared length: the buffer only grows with bytes that
//! actually arrived, and never past [`MAX_MESSAGE`] plus the prefix and one byte, however
//! large a length the prefix claims. Every way a request can be wrong ends in a
//! [`CallError`], never a panic.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::HeaderMap;

/// The length prefix: one byte "compressed" flag, then the length as a big-endian `u32`.
pub(crate) const PREFIX: usize = 5;

/// The largest request message read. A `grpc.health.v1` request is a service name; a
/// message larger than this is refused with `RESOURCE_EXHAUSTED` before it is read.
pub(crate) const MAX_MESSAGE: usize = max_message!();

/// [`MAX_MESSAGE`] as a literal, so that the error that names it says the same number.
macro_rules! max_message {
    () => {
        4096
    };
}
use max_message;

pub(crate) const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
pub(crate) const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
const GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");
const GRPC_ACCEPT_ENCODING: HeaderName = HeaderName::from_static("grpc-accept-encoding");
const APPLICATION_GRPC: HeaderValue = HeaderValue::from_static("application/grpc");
const IDENTITY: HeaderValue = HeaderValue::from_static("identity");

/// The gRPC status codes this service answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    Ok = 0,
    NotFound = 5,
    ResourceExhausted = 8,
    Unimplemented = 12,
    Internal = 13,
}

impl Code {
    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Code::Ok => "0",
            Code::NotFound => "5",
            Code::ResourceExhausted => "8",
            Code::Unimplemented => "12",
            Code::Internal => "13",
        })
    }
}

/// How a call ends when it does not end well: a code and a fixed message.
///
/// Messages never echo what the client sent, so they need no percent-encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CallError {
    pub(crate) code: Code,
    pub(crate) message: &'static str,
}

impl CallError {
    pub(crate) const fn new(code: Code, message: &'static str) -> CallError {
        CallError { code, message }
    }

    pub(crate) const NO_MESSAGE: CallError =
        CallError::new(Code::Internal, "the unary request has no message");
    pub(crate) const TRUNCATED: CallError =
        CallError::new(Code::Internal, "the request ended inside a message");
    pub(crate) const TWO_MESSAGES: CallError = CallError::new(
        Code::Internal,
        "the unary request has bytes after its one message",
    );
    pub(crate) const BAD_FLAG: CallError = CallError::new(
        Code::Internal,
        "the compressed flag of the message is neither 0 nor 1",
    );
    pub(crate) const COMPRESSED_WITHOUT_ENCODING: CallError = CallError::new(
        Code::Internal,
        "the message is marked compressed but grpc-encoding names no compression",
    );
    pub(crate) const UNSUPPORTED_ENCODING: CallError = CallError::new(
        Code::Unimplemented,
        "the message is compressed; this server accepts identity only",
    );
    pub(crate) const TOO_LARGE: CallError = CallError::new(
        Code::ResourceExhausted,
        concat!(
            "the request message is larger than ",
            max_message!(),
            " bytes"
        ),
    );
    pub(crate) const NOT_PROTOBUF: CallError = CallError::new(
        Code::Internal,
        "the request message is not a valid protobuf message of its type",
    );
    pub(crate) const BODY_ERROR: CallError =
        CallError::new(Code::Internal, "the request body failed before its end");
    pub(crate) const UNSUPPORTED_CODEC: CallError = CallError::new(
        Code::Unimplemented,
        "this server speaks grpc.health.v1 in protobuf only (application/grpc+proto)",
    );
    pub(crate) const NEEDS_HTTP2: CallError = CallError::new(
        Code::Internal,
        "gRPC needs HTTP/2; this request came over HTTP/1",
    );
}

/// What the `content-type` of a request says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentType {
    /// `application/grpc` or `application/grpc+proto`, with or without parameters.
    GrpcProto,
    /// `application/grpc+json` and other codecs: gRPC, in a form this service cannot read.
    GrpcOther,
    /// Anything else, gRPC-Web included: not a gRPC request.
    NotGrpc,
}

impl ContentType {
    pub(crate) fn of(headers: &HeaderMap) -> ContentType {
        let Some(value) = headers.get(CONTENT_TYPE) else {
            return ContentType::NotGrpc;
        };
        let media = value.as_bytes();
        let media = match media.iter().position(|&b| b == b';') {
            Some(end) => &media[..end],
            None => media,
        };
        let media = media.trim_ascii();
        let Some(rest) = strip_prefix_ignore_case(media, b"application/grpc") else {
            return ContentType::NotGrpc;
        };
        match rest {
            b"" => ContentType::GrpcProto,
            _ if rest.eq_ignore_ascii_case(b"+proto") => ContentType::GrpcProto,
            [b'+', ..] => ContentType::GrpcOther,
            // `application/grpc-web`, `application/grpcfoo`...
            _ => ContentType::NotGrpc,
        }
    }
}

fn strip_prefix_ignore_case<'a>(bytes: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = bytes.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &bytes[prefix.len()..])
}

/// Whether the request's messages may be compressed: `grpc-encoding` naming anything but
/// `identity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Identity,
    Other,
}

impl Encoding {
    pub(crate) fn of(headers: &HeaderMap) -> Encoding {
        match headers.get(GRPC_ENCODING) {
            None => Encoding::Identity,
            Some(value) if value.as_bytes().eq_ignore_ascii_case(b"identity") => Encoding::Identity,
            Some(_) => Encoding::Other,
        }
    }
}

// === impl Unary ===

/// The one message of a unary request, read from body chunks as they arrive.
#[derive(Debug)]
pub(crate) struct Unary {
    buf: BytesMut,
    encoding: Encoding,
}

impl Unary {
    pub(crate) fn new(encoding: Encoding) -> Unary {
        Unary {
            buf: BytesMut::new(),
            encoding,
        }
    }

    /// How many bytes have been kept so far.
    #[cfg(test)]
    pub(crate) fn kept(&self) -> usize {
        self.buf.len()
    }

    /// The message's declared length, once the prefix is complete and acceptable.
    fn declared(&self) -> Result<Option<usize>, CallError> {
        let Some(prefix) = self.buf.get(..PREFIX) else {
            return Ok(None);
        };
        match (prefix[0], self.encoding) {
            (0, _) => {}
            (1, Encoding::Identity) => return Err(CallError::COMPRESSED_WITHOUT_ENCODING),
            (1, Encoding::Other) => return Err(CallError::UNSUPPORTED_ENCODING),
            _ => return Err(CallError::BAD_FLAG),
        }
        let length = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]);
        match usize::try_from(length) {
            Ok(length) if length <= MAX_MESSAGE => Ok(Some(length)),
            _ => Err(CallError::TOO_LARGE),
        }
    }

    /// Takes in the next chunk of the body. An error ends the call: nothing after it needs
    /// reading.
    pub(crate) fn push(&mut self, mut chunk: impl Buf) -> Result<(), CallError> {
        while chunk.has_remaining() {
            // Keep the prefix first; then the message and one byte more, which is enough
            // to know that something follows it.
            let wanted = match self.declared()? {
                None => PREFIX,
                Some(length) => PREFIX + length + 1,
            };
            if self.buf.len() >= wanted {
                return Err(CallError::TWO_MESSAGES);
            }
            let take = (wanted - self.buf.len()).min(chunk.remaining());
            self.buf.put((&mut chunk).take(take));
        }
        match self.declared()? {
            Some(length) if self.buf.len() > PREFIX + length => Err(CallError::TWO_MESSAGES),
            _ => Ok(()),
        }
    }

    /// The message, once the body has ended.
    pub(crate) fn finish(mut self) -> Result<Bytes, CallError> {
        if self.buf.is_empty() {
            return Err(CallError::NO_MESSAGE);
        }
        match self.declared()? {
            None => Err(CallError::TRUNCATED),
            Some(length) if self.buf.len() < PREFIX + length => Err(CallError::TRUNCATED),
            Some(_) => Ok(self.buf.split_off(PREFIX).freeze()),
        }
    }
}

/// The message of a whole unary request body.
#[cfg(test)]
pub(crate) fn unary(body: &[u8], encoding: Encoding) -> Result<Bytes, CallError> {
    let mut reader = Unary::new(encoding);
    reader.push(body)?;
    reader.finish()
}

/// Decodes a request message.
pub(crate) fn decode<M: prost::Message + Default>(message: &[u8]) -> Result<M, CallError> {
    M::decode(message).map_err(|_| CallError::NOT_PROTOBUF)
}

/// A response message with its prefix, ready to send as one data frame.
pub(crate) fn frame(message: &impl prost::Message) -> Bytes {
    let length = message.encoded_len();
    let mut out = BytesMut::with_capacity(PREFIX + length);
    out.put_u8(0);
    // Responses are a status or a list of at most a few hundred names: far below 4 GiB.
    out.put_u32(u32::try_from(length).unwrap_or(u32::MAX));
    message
        .encode(&mut out)
        .expect("the buffer was sized to the message");
    out.freeze()
}

// === headers and trailers ===

/// The headers of a response that has messages: its trailers come after them.
pub(crate) fn response_headers() -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(1);
    headers.insert(CONTENT_TYPE, APPLICATION_GRPC);
    headers
}

/// The trailers that end a call well.
pub(crate) fn ok_trailers() -> HeaderMap {
    let mut trailers = HeaderMap::with_capacity(1);
    trailers.insert(GRPC_STATUS, Code::Ok.header());
    trailers
}

/// A trailers-only response: the call's status in the headers, and no body. It names the
/// one message encoding this server reads, which a client whose compressed message was
/// refused needs to know.
pub(crate) fn trailers_only(status: CallError) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(4);
    headers.insert(CONTENT_TYPE, APPLICATION_GRPC);
    headers.insert(GRPC_ACCEPT_ENCODING, IDENTITY);
    headers.insert(GRPC_STATUS, status.code.header());
    headers.insert(GRPC_MESSAGE, HeaderValue::from_static(status.message));
    headers
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::answer::grpc::messages::{HealthCheckRequest, HealthListRequest};

    fn framed(flag: u8, message: &[u8]) -> Vec<u8> {
        let mut out = vec![flag];
        out.extend_from_slice(&(message.len() as u32).to_be_bytes());
        out.extend_from_slice(message);
        out
    }

    /// Feeds `body` split at `cuts`, as an HTTP/2 peer may, and returns the result and the
    /// most bytes the reader ever kept.
    fn chunked(
        body: &[u8],
        cuts: &[usize],
        encoding: Encoding,
    ) -> (Result<Bytes, CallError>, usize) {
        let mut reader = Unary::new(encoding);
        let mut kept = 0;
        let mut start = 0;
        let mut ends: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
        ends.sort_unstable();
        ends.push(body.len());
        for end in ends {
            let pushed = reader.push(&body[start..end]);
            kept = kept.max(reader.kept());
            if let Err(status) = pushed {
                return (Err(status), kept);
            }
            start = end;
        }
        (reader.finish(), kept)
    }

    /// What a case is, the body, its `grpc-encoding`, and the message or status expected.
    type Case = (
        &'static str,
        Vec<u8>,
        Encoding,
        Result<&'static [u8], CallError>,
    );

    #[test]
    fn each_malformed_request_gets_its_status() {
        let id = Encoding::Identity;
        let cases: [Case; 11] = [
            (
                "a well-formed message",
                framed(0, b"\x0a\x01x"),
                id,
                Ok(b"\x0a\x01x"),
            ),
            ("an empty message", framed(0, b""), id, Ok(b"")),
            ("no message at all", vec![], id, Err(CallError::NO_MESSAGE)),
            (
                "half a prefix",
                vec![0, 0, 0],
                id,
                Err(CallError::TRUNCATED),
            ),
            (
                "a truncated message",
                framed(0, b"abc")[..6].to_vec(),
                id,
                Err(CallError::TRUNCATED),
            ),
            (
                "a 4 GB prefix",
                vec![0, 0xff, 0xff, 0xff, 0xff],
                id,
                Err(CallError::TOO_LARGE),
            ),
            (
                "one byte too many",
                framed(0, &[b'x'; MAX_MESSAGE + 1]),
                id,
                Err(CallError::TOO_LARGE),
            ),
            (
                "a second message",
                [framed(0, b"a"), framed(0, b"b")].concat(),
                id,
                Err(CallError::TWO_MESSAGES),
            ),
            (
                "a compressed flag with no encoding",
                framed(1, b"a"),
                id,
                Err(CallError::COMPRESSED_WITHOUT_ENCODING),
            ),
            (
                "a compressed message",
                framed(1, b"a"),
                Encoding::Other,
                Err(CallError::UNSUPPORTED_ENCODING),
            ),
            ("a flag of 2", framed(2, b"a"), id, Err(CallError::BAD_FLAG)),
        ];
        for (what, body, encoding, expected) in cases {
            let got = unary(&body, encoding);
            assert_eq!(got.as_deref().map_err(|s| *s), expected, "{what}");
        }
        // The largest message accepted is read whole.
        let largest = framed(0, &[b'x'; MAX_MESSAGE]);
        assert_eq!(unary(&largest, id).unwrap().len(), MAX_MESSAGE);
        // An uncompressed message is read whatever grpc-encoding says.
        assert_eq!(&unary(&framed(0, b"a"), Encoding::Other).unwrap()[..], b"a");
    }

    #[test]
    fn a_4_gb_prefix_is_refused_before_anything_is_kept_for_it() {
        let mut reader = Unary::new(Encoding::Identity);
        assert_eq!(
            reader.push(&[0u8, 0xff, 0xff, 0xff, 0xff, 1, 2, 3][..]),
            Err(CallError::TOO_LARGE)
        );
        assert!(reader.kept() <= PREFIX);
    }

    #[test]
    fn content_types() {
        let cases = [
            ("application/grpc", ContentType::GrpcProto),
            ("application/grpc+proto", ContentType::GrpcProto),
            ("Application/GRPC+Proto", ContentType::GrpcProto),
            ("application/grpc; charset=utf-8", ContentType::GrpcProto),
            ("application/grpc+json", ContentType::GrpcOther),
            ("application/grpc-web", ContentType::NotGrpc),
            ("application/grpc-web+proto", ContentType::NotGrpc),
            ("application/json", ContentType::NotGrpc),
            ("application/grp", ContentType::NotGrpc),
            ("", ContentType::NotGrpc),
        ];
        for (value, expected) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(ContentType::of(&headers), expected, "{value:?}");
        }
        assert_eq!(ContentType::of(&HeaderMap::new()), ContentType::NotGrpc);
    }

    #[test]
    fn a_response_frame_is_prefixed_with_its_length() {
        let message = HealthCheckRequest {
            service: "db".into(),
        };
        assert_eq!(&frame(&message)[..], &[0, 0, 0, 0, 4, 0x0a, 2, b'd', b'b']);
        assert_eq!(&frame(&HealthListRequest {})[..], &[0, 0, 0, 0, 0]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Any bytes, cut anywhere: an answer, the same as for the whole body at once, and
        /// never more kept than the largest message allows.
        #[test]
        fn arbitrary_bodies_never_panic_nor_overallocate(
            body in prop::collection::vec(any::<u8>(), 0..64),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
            compressed in any::<bool>(),
        ) {
            let encoding = if compressed { Encoding::Other } else { Encoding::Identity };
            let whole = unary(&body, encoding);
            let (split, kept) = chunked(&body, &cuts, encoding);
            prop_assert_eq!(&whole, &split);
            prop_assert!(kept <= PREFIX + MAX_MESSAGE + 1);
            if let Ok(message) = whole {
                let _ = decode::<HealthCheckRequest>(&message);
                let _ = decode::<HealthListRequest>(&message);
            }
        }

        /// A prefix that claims any length, followed by any bytes: the reader keeps no more
        /// than arrived, and no more than the limit.
        #[test]
        fn declared_lengths_are_not_trusted(
            flag in 0u8..3,
            length in any::<u32>(),
            tail in prop::collection::vec(any::<u8>(), 0..256),
            cuts in prop::collection::vec(any::<usize>(), 0..4),
        ) {
            let mut body = vec![flag];
            body.extend_from_slice(&length.to_be_bytes());
            body.extend_from_slice(&tail);
            let (result, kept) = chunked(&body, &cuts, Encoding::Identity);
            prop_assert!(kept <= body.len().min(PREFIX + MAX_MESSAGE + 1));
            let fits = flag == 0 && (length as usize) == tail.len();
            prop_assert_eq!(result.is_ok(), fits);
        }

        /// A well-framed request with any service name, and any unknown fields after it,
        /// decodes to that name.
        #[test]
        fn valid_requests_round_trip(
            service in ".{0,64}",
            unknown in prop::collection::vec((3u32..1000, any::<u64>()), 0..4),
            cuts in prop::collection::vec(any::<usize>(), 0..4),
        ) {
            let mut message = prost::Message::encode_to_vec(&HealthCheckRequest {
                service: service.clone(),
            });
            for (field, value) in unknown {
                // An unknown varint field: key = field << 3 | 0.
                prost::encoding::encode_varint(u64::from(field) << 3, &mut message);
                prost::encoding::encode_varint(value, &mut message);
            }
            let body = framed(0, &message);
            let (result, _) = chunked(&body, &cuts, Encoding::Identity);
            let decoded: HealthCheckRequest = decode(&result.unwrap()).unwrap();
            prop_assert_eq!(decoded.service, service);
        }
    }
}
