//! The identity of a configuration, shared by the server and the operator.
//!
//! The operator writes a Prometheus object's generated files into a Secret and
//! then asks every server pod which configuration it runs; both sides compute
//! this hash over the same file map, so equal hashes mean the pod runs exactly
//! what was written.

use std::collections::BTreeMap;

use xxhash_rust::xxh3::Xxh3;

/// xxh3_64 over every entry in key order: key length (u64 LE), key bytes,
/// value length (u64 LE), value bytes; as 16 lowercase hex digits. The
/// lengths make the encoding unambiguous, so moving bytes between a key and
/// its value (or between entries) changes the hash.
pub fn content_hash(files: &BTreeMap<String, Vec<u8>>) -> String {
    let mut h = Xxh3::new();
    for (key, value) in files {
        h.update(&(key.len() as u64).to_le_bytes());
        h.update(key.as_bytes());
        h.update(&(value.len() as u64).to_le_bytes());
        h.update(value);
    }
    format!("{:016x}", h.digest())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        entries.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect()
    }

    #[test]
    fn renders_sixteen_lowercase_hex_digits() {
        for m in [map(&[]), map(&[("a", "b")]), map(&[("prometheus-shard-0.yaml", "global: {}\n")])] {
            let h = content_hash(&m);
            assert_eq!(h.len(), 16, "{h}");
            assert!(h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{h}");
        }
    }

    #[test]
    fn matches_the_documented_encoding() {
        // Computed independently of the function: the byte layout spelled out.
        let mut bytes = Vec::new();
        for (k, v) in [("a.yaml", "x: 1\n"), ("b.yaml", "")] {
            bytes.extend_from_slice(&(k.len() as u64).to_le_bytes());
            bytes.extend_from_slice(k.as_bytes());
            bytes.extend_from_slice(&(v.len() as u64).to_le_bytes());
            bytes.extend_from_slice(v.as_bytes());
        }
        let expected = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes));
        assert_eq!(content_hash(&map(&[("b.yaml", ""), ("a.yaml", "x: 1\n")])), expected);
        // The empty map is the hash of no bytes.
        assert_eq!(content_hash(&BTreeMap::new()), format!("{:016x}", xxhash_rust::xxh3::xxh3_64(b"")));
    }

    #[test]
    fn different_content_different_hash() {
        let base = content_hash(&map(&[("a", "1"), ("b", "2")]));
        assert_ne!(base, content_hash(&map(&[("a", "1"), ("b", "3")])));
        assert_ne!(base, content_hash(&map(&[("a", "1"), ("c", "2")])));
        assert_ne!(base, content_hash(&map(&[("a", "1")])));
        assert_ne!(base, content_hash(&map(&[("a", "1"), ("b", "2"), ("c", "")])));
    }

    #[test]
    fn shifting_the_key_value_boundary_changes_the_hash() {
        assert_ne!(content_hash(&map(&[("ab", "c")])), content_hash(&map(&[("a", "bc")])));
        // Bytes moving from one entry's value into the next entry's key.
        assert_ne!(content_hash(&map(&[("a", "xb"), ("c", "")])), content_hash(&map(&[("a", "x"), ("bc", "")])));
        assert_ne!(content_hash(&map(&[("a", "")])), content_hash(&map(&[("", "a")])));
    }

    #[test]
    fn insertion_order_does_not_matter() {
        let mut forward = BTreeMap::new();
        let mut backward = BTreeMap::new();
        let entries = [("rules-ns-a.yaml", "groups: []\n"), ("prometheus-shard-0.yaml", "global: {}\n"), ("prometheus-shard-1.yaml", "")];
        for (k, v) in entries {
            forward.insert(k.to_string(), v.as_bytes().to_vec());
        }
        for (k, v) in entries.iter().rev() {
            backward.insert(k.to_string(), v.as_bytes().to_vec());
        }
        assert_eq!(content_hash(&forward), content_hash(&backward));
    }
}
