//! Compressing request bodies the way shippers do, for the `Content-Encoding` tests: gzip,
//! zlib (HTTP's `deflate`) and zstd (level 3, as Vector and Fluent Bit default to).

use std::io::Write as _;

/// `data` gzip-compressed.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// `data` in a zlib stream: what HTTP calls `deflate`.
pub fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// `data` as one zstd frame.
pub fn zstd(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0; zstd_safe::compress_bound(data.len())];
    let n = zstd_safe::compress(&mut out[..], data, 3).unwrap();
    out.truncate(n);
    out
}

/// `data` compressed with the `Content-Encoding` named `coding` (`gzip`, `deflate`, `zstd`).
pub fn encode(coding: &str, data: &[u8]) -> Vec<u8> {
    match coding {
        "gzip" => gzip(data),
        "deflate" => zlib(data),
        "zstd" => zstd(data),
        _ => unreachable!("{coding}"),
    }
}
