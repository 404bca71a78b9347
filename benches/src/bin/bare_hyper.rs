//! The bare-hyper baseline of the load benchmark (`benches/load/run.sh`): a hyper 1.x HTTP/1.1
//! server that reads each request body and answers `202 {"accepted":1}`, with the same runtime
//! settings as uniqd (a multi-thread tokio runtime with one worker per core, `TCP_NODELAY`,
//! keep-alive) and nothing else: no parsing, no counting, no metrics, no limits.
//!
//! ```text
//! bare-hyper [--listen 127.0.0.1:5000] [--workers N] [--lines] [--per-core]
//! ```
//!
//! `--lines` is the NDJSON baseline: it splits the body into lines as chunks arrive (counting
//! newlines with memchr, the least any line-oriented server must do) and answers
//! `202 {"accepted":<lines>}`. uniqd's throughput is quoted as a ratio to this server, measured
//! in the same script.
//!
//! `--per-core` runs one current-thread runtime per worker, each accepting on its own
//! `SO_REUSEPORT` listener, instead of one multi-thread runtime: the runtime experiment recorded
//! in `docs/benchmarks.md` (`BARE_ARGS=--per-core benches/load/run.sh`).

#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Command-line settings.
struct Args {
    listen: SocketAddr,
    workers: usize,
    lines: bool,
    per_core: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
        workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        lines: false,
        per_core: false,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let mut value = || iter.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => args.listen = value()?.parse().map_err(|e| format!("--listen: {e}"))?,
            "--workers" => {
                args.workers = value()?.parse().map_err(|e| format!("--workers: {e}"))?
            }
            "--lines" => args.lines = true,
            "--per-core" => args.per_core = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

/// Reads the whole body; with `lines`, counts its lines (a last line without `\n` included).
async fn read_body(mut body: Incoming, lines: bool) -> Result<u64, hyper::Error> {
    let (mut count, mut last) = (0u64, b'\n');
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if lines && !data.is_empty() {
                count += memchr::memchr_iter(b'\n', &data).count() as u64;
                last = data[data.len() - 1];
            }
        }
    }
    Ok(if lines {
        count + u64::from(last != b'\n')
    } else {
        1
    })
}

async fn handle(req: Request<Incoming>, lines: bool) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match read_body(req.into_body(), lines).await {
        Ok(accepted) => Response::builder()
            .status(StatusCode::ACCEPTED)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(format!(
                "{{\"accepted\":{accepted}}}"
            )))),
        Err(_) => Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(Full::new(Bytes::new())),
    };
    // Both builders above only set valid static headers and statuses.
    Ok(response.unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}

async fn serve(listener: TcpListener, lines: bool) -> io::Result<()> {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            // EMFILE and friends: a baseline has no backoff, it just goes on.
            Err(_) => continue,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, lines));
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn main() -> io::Result<()> {
    let args = parse_args().map_err(|msg| io::Error::new(io::ErrorKind::InvalidInput, msg))?;
    if args.per_core {
        return per_core(&args);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(args.listen).await?;
        serve(listener, args.lines).await
    })
}

/// One current-thread runtime per worker, each accepting on its own `SO_REUSEPORT` listener.
fn per_core(args: &Args) -> io::Result<()> {
    let threads: Vec<_> = (0..args.workers)
        .map(|_| {
            let (listen, lines) = (args.listen, args.lines);
            std::thread::spawn(move || -> io::Result<()> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let socket = tokio::net::TcpSocket::new_v4()?;
                    socket.set_reuseport(true)?;
                    socket.set_reuseaddr(true)?;
                    socket.bind(listen)?;
                    serve(socket.listen(1024)?, lines).await
                })
            })
        })
        .collect();
    for thread in threads {
        thread
            .join()
            .map_err(|_| io::Error::other("a worker thread panicked"))??;
    }
    Ok(())
}
