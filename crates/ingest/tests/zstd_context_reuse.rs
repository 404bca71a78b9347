//! The zstd decoder takes its context from a per-thread pool and gives it back when a body is
//! done (`decode.rs`, `PooledDCtx`). A context given back after a body cut short mid-frame or
//! refused as malformed must decode the next body exactly, as a fresh one would.

use bytes::Bytes;
use uniqd_ingest::decode::{Coding, Decoder, Malformed};

fn zstd(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0; zstd_safe::compress_bound(data.len())];
    let n = zstd_safe::compress(&mut out[..], data, 3).expect("in memory");
    out.truncate(n);
    out
}

/// Decodes `encoded` in chunks of 1,000 bytes; `end` says whether the body ended there.
fn decode(encoded: &[u8], end: bool) -> Result<Vec<u8>, Malformed> {
    let mut d = Decoder::new(Coding::Zstd).expect("not identity");
    let mut out = Vec::new();
    for chunk in encoded.chunks(1000) {
        d.push(Bytes::copy_from_slice(chunk));
        while let Some(n) = d.decode()? {
            out.extend_from_slice(d.output(n));
        }
    }
    if end {
        d.end();
        while let Some(n) = d.decode()? {
            out.extend_from_slice(d.output(n));
        }
    }
    Ok(out)
}

#[test]
fn a_reused_context_starts_every_body_afresh() {
    let bodies: Vec<Vec<u8>> = (0..4)
        .map(|k| {
            (0..3000)
                .map(|i| format!("{{\"ip\":\"10.{k}.{}.{}\"}}\n", i / 250, i % 250))
                .collect::<String>()
                .into_bytes()
        })
        .collect();
    for (k, body) in bodies.iter().enumerate() {
        let encoded = zstd(body);
        // Before each good body, one that leaves the context mid-frame: abandoned (the client
        // went away), cut short at its end, or garbage after a valid prefix.
        let half = &encoded[..encoded.len() / 2];
        match k % 3 {
            0 => drop(decode(half, false)),
            1 => assert_eq!(decode(half, true), Err(Malformed)),
            _ => {
                let broken = [half, b"not zstd at all".as_slice()].concat();
                assert_eq!(decode(&broken, true), Err(Malformed));
            }
        }
        assert!(decode(&encoded, true).expect("valid") == *body, "body {k}");
    }
}
