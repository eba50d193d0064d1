//! Remote-write 1.0 bodies: a protobuf `WriteRequest` compressed with
//! snappy's *block* format (not the framed/stream format), as the protocol
//! requires.

use prost::Message;

use super::proto::{Label, WriteRequest};
use crate::model::Labels;

/// Largest decompressed body the receiver accepts (Prometheus' limit is
/// the same order: a body is at most a few MB in practice).
pub const MAX_DECODED_BYTES: usize = 64 << 20;

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("snappy block: {0}")]
    Snappy(#[from] snap::Error),
    #[error("snappy block: decompressed size {0} bytes exceeds the limit of {MAX_DECODED_BYTES} bytes")]
    TooLarge(usize),
    #[error("protobuf WriteRequest: {0}")]
    Protobuf(#[from] prost::DecodeError),
}

/// Serializes and compresses a request into a body ready to POST.
pub fn encode(req: &WriteRequest, scratch: &mut Vec<u8>) -> Vec<u8> {
    scratch.clear();
    scratch.reserve(req.encoded_len());
    // Encoding into a Vec cannot run out of space.
    req.encode(scratch).unwrap_or_else(|e| unreachable!("protobuf encoding into a Vec failed: {e}"));
    snap::raw::Encoder::new().compress_vec(scratch).unwrap_or_else(|e| unreachable!("snappy compression of a buffer failed: {e}"))
}

/// Decompresses and parses a body.
pub fn decode(body: &[u8]) -> Result<WriteRequest, DecodeError> {
    let len = snap::raw::decompress_len(body)?;
    if len > MAX_DECODED_BYTES {
        return Err(DecodeError::TooLarge(len));
    }
    let raw = snap::raw::Decoder::new().decompress_vec(body)?;
    Ok(WriteRequest::decode(raw.as_slice())?)
}

/// Protobuf labels of a series, sorted by name as the protocol requires
/// ([`Labels`] are kept sorted, so this is a copy in order).
pub fn labels_to_proto(labels: &Labels) -> Vec<Label> {
    labels.iter().map(|l| Label { name: l.name.clone(), value: l.value.clone() }).collect()
}

#[cfg(test)]
mod tests {
    use super::super::proto::{Sample, TimeSeries};
    use super::*;

    fn request() -> WriteRequest {
        let labels = Labels::from_pairs([("job", "node"), ("__name__", "up"), ("instance", "a:9100")]);
        WriteRequest {
            timeseries: vec![TimeSeries {
                labels: labels_to_proto(&labels),
                samples: vec![Sample { value: 1.0, timestamp: 1_000 }, Sample { value: f64::INFINITY, timestamp: 2_000 }],
            }],
            metadata: Vec::new(),
        }
    }

    #[test]
    fn encode_then_decode_round_trips() {
        let req = request();
        let body = encode(&req, &mut Vec::new());
        assert_eq!(decode(&body).expect("decodes"), req);
    }

    #[test]
    fn body_is_a_snappy_block_of_the_protobuf() {
        let req = request();
        let body = encode(&req, &mut Vec::new());
        // A block starts with the uncompressed length as a varint; the
        // stream format would start with the 0xff stream identifier chunk.
        assert_ne!(body[0], 0xff);
        let raw = snap::raw::Decoder::new().decompress_vec(&body).expect("snappy block");
        assert_eq!(raw, req.encode_to_vec());
    }

    #[test]
    fn labels_are_sorted_by_name() {
        let names: Vec<String> = request().timeseries[0].labels.iter().map(|l| l.name.clone()).collect();
        assert_eq!(names, ["__name__", "instance", "job"]);
    }

    #[test]
    fn garbage_is_rejected_with_the_layer_that_failed() {
        assert!(matches!(decode(b"\xff\xff\xff\xff\xff\xff"), Err(DecodeError::Snappy(_))));
        let not_proto = snap::raw::Encoder::new().compress_vec(b"\x0a\xff\xff\xff").expect("compress");
        assert!(matches!(decode(&not_proto), Err(DecodeError::Protobuf(_))));
    }
}
