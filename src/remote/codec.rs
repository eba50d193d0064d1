//! Remote-write 1.0 bodies: a protobuf `WriteRequest` compressed with
//! snappy's *block* format (not the framed/stream format), as the protocol
//! requires.

use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};

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

/// Compresses a serialized `WriteRequest` into a body ready to POST.
pub fn compress(raw: &[u8]) -> Vec<u8> {
    // Compressing a buffer into a Vec has no failure mode but a size over 4 GiB.
    snap::raw::Encoder::new().compress_vec(raw).unwrap_or_else(|e| unreachable!("snappy compression of a buffer failed: {e}"))
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

/// The `labels` fields of a `TimeSeries`, in name order as the protocol
/// requires ([`Labels`] are kept sorted). Encoded once per series and
/// copied into every request, so sending does not rebuild label strings.
pub fn encode_labels(labels: &Labels) -> Vec<u8> {
    let mut out = Vec::new();
    for l in labels.iter() {
        prost::encoding::message::encode(1, &Label { name: l.name.clone(), value: l.value.clone() }, &mut out);
    }
    out
}

/// Protobuf size of a `Sample` (proto3: zero fields are left out).
fn sample_len(t: i64, v: f64) -> usize {
    (if v.to_bits() != 0 { 9 } else { 0 }) + (if t != 0 { 1 + encoded_len_varint(t as u64) } else { 0 })
}

/// Appends one `WriteRequest.timeseries` entry: labels from
/// [`encode_labels`], then the samples `(timestamp ms, value)` in order.
pub fn put_timeseries(out: &mut Vec<u8>, labels: &[u8], samples: &[(i64, f64)]) {
    let body = labels.len()
        + samples
            .iter()
            .map(|&(t, v)| {
                let n = sample_len(t, v);
                1 + encoded_len_varint(n as u64) + n
            })
            .sum::<usize>();
    encode_key(1, WireType::LengthDelimited, out);
    encode_varint(body as u64, out);
    out.extend_from_slice(labels);
    for &(t, v) in samples {
        encode_key(2, WireType::LengthDelimited, out);
        encode_varint(sample_len(t, v) as u64, out);
        if v.to_bits() != 0 {
            encode_key(1, WireType::SixtyFourBit, out);
            out.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        if t != 0 {
            encode_key(2, WireType::Varint, out);
            encode_varint(t as u64, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::proto::{Sample, TimeSeries};
    use super::*;

    fn labels() -> Labels {
        Labels::from_pairs([("job", "node"), ("__name__", "up"), ("instance", "a:9100")])
    }

    /// A body of two series made with our encoder.
    fn body(samples: &[(i64, f64)]) -> Vec<u8> {
        let mut raw = Vec::new();
        put_timeseries(&mut raw, &encode_labels(&labels()), samples);
        put_timeseries(&mut raw, &encode_labels(&Labels::from_pairs([("__name__", "x")])), &[(0, 0.0)]);
        compress(&raw)
    }

    #[test]
    fn encoded_bodies_decode_to_the_same_request() {
        let samples = [(1_000, 1.0), (-5, f64::INFINITY), (0, -0.5), (7, 0.0), (i64::MAX, f64::MIN_POSITIVE)];
        let got = decode(&body(&samples)).expect("decodes");
        let want = WriteRequest {
            timeseries: vec![
                TimeSeries {
                    labels: labels().iter().map(|l| Label { name: l.name.clone(), value: l.value.clone() }).collect(),
                    samples: samples.iter().map(|&(timestamp, value)| Sample { value, timestamp }).collect(),
                },
                TimeSeries {
                    labels: vec![Label { name: "__name__".into(), value: "x".into() }],
                    samples: vec![Sample { value: 0.0, timestamp: 0 }],
                },
            ],
            metadata: Vec::new(),
        };
        assert_eq!(got, want);
        // Byte for byte what prost writes for the same message.
        let raw = snap::raw::Decoder::new().decompress_vec(&body(&samples)).expect("snappy block");
        assert_eq!(raw, want.encode_to_vec());
    }

    #[test]
    fn body_is_a_snappy_block() {
        // A block starts with the uncompressed length as a varint; the
        // stream format would start with the 0xff stream identifier chunk.
        assert_ne!(body(&[(1, 1.0)])[0], 0xff);
    }

    #[test]
    fn labels_are_sorted_by_name() {
        let got = decode(&body(&[(1, 1.0)])).expect("decodes");
        let names: Vec<&str> = got.timeseries[0].labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "instance", "job"]);
    }

    #[test]
    fn garbage_is_rejected_with_the_layer_that_failed() {
        assert!(matches!(decode(b"\xff\xff\xff\xff\xff\xff"), Err(DecodeError::Snappy(_))));
        let not_proto = snap::raw::Encoder::new().compress_vec(b"\x0a\xff\xff\xff").expect("compress");
        assert!(matches!(decode(&not_proto), Err(DecodeError::Protobuf(_))));
    }
}
