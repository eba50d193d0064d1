//! Micro-benchmarks of the storage encodings and postings operations.
//! Run with `cargo bench --bench chunks`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hearth::model::Sample;
use hearth::tsdb::chunkenc::{XorChunk, decimal};
use hearth::tsdb::encoding::Reader;
use hearth::tsdb::postings;

fn samples(n: usize) -> Vec<Sample> {
    (0..n).map(|i| Sample::new(1_700_000_000_000 + i as i64 * 15_000 + (i as i64 * 7) % 3, (1000 + i * 37) as f64 * 0.5)).collect()
}

fn encodings(c: &mut Criterion) {
    let s = samples(120);
    let mut g = c.benchmark_group("chunk");
    g.throughput(Throughput::Elements(s.len() as u64));
    g.bench_function("xor_append_120", |b| {
        b.iter(|| {
            let mut ch = XorChunk::new();
            for x in &s {
                ch.append(x.t, x.v);
            }
            ch
        })
    });
    let mut ch = XorChunk::new();
    s.iter().for_each(|x| ch.append(x.t, x.v));
    g.bench_function("xor_iterate_120", |b| b.iter(|| ch.iter().map(|x| x.v).sum::<f64>()));
    let big = samples(1024);
    g.throughput(Throughput::Elements(big.len() as u64));
    g.bench_function("decimal_encode_1024", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(2048);
            decimal::encode(&big, &mut out);
            out
        })
    });
    let mut enc = Vec::new();
    decimal::encode(&big, &mut enc);
    g.bench_function("decimal_decode_1024", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(1024);
            decimal::decode(&mut Reader::new(&enc), &mut out).map(|_| out.len())
        })
    });
    g.finish();
}

fn postings_ops(c: &mut Criterion) {
    let a: Vec<u32> = (0..100_000).map(|i| i * 3).collect();
    let b: Vec<u32> = (0..100_000).map(|i| i * 5).collect();
    let small: Vec<u32> = (0..100).map(|i| i * 2999).collect();
    c.bench_function("postings_intersect_100k", |bch| bch.iter(|| postings::intersect(&a, &b).len()));
    c.bench_function("postings_intersect_gallop_100_vs_100k", |bch| bch.iter(|| postings::intersect(&small, &a).len()));
    c.bench_function("postings_union_2x100k", |bch| bch.iter(|| postings::union(&[&a, &b]).len()));
}

criterion_group!(benches, encodings, postings_ops);
criterion_main!(benches);
