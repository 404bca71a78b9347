//! The bare baseline of the syslog benchmark (`benches/load/syslog.sh`): a receiver built like
//! uniqd's syslog listener (a multi-thread tokio runtime with one worker per core; over UDP one
//! `SO_REUSEPORT` socket per worker, each read by one task that drains up to 64 datagrams per
//! wake-up; over TCP one task per connection) that only counts messages: datagrams, or
//! newlines in the stream. No header parsing, no JSON, no counting of addresses.
//!
//! ```text
//! bare-syslog (--udp ADDR | --tcp ADDR) --count-file PATH [--workers N] [--receive-buffer BYTES] [--mmsg]
//! ```
//!
//! The running total is written to `--count-file` every 50 ms, for the script to read.
//! `--receive-buffer` defaults to uniqd's 8 MiB (capped by `net.core.rmem_max`), like for like.
//! `--mmsg` reads with `recvmmsg(2)`, up to 64 datagrams per system call, instead of one
//! `recv` each: the experiment behind issue 18's "batched receives where they help"
//! (`BARE_ARGS=--mmsg`, docs/benchmarks.md).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpListener, UdpSocket};

/// Most datagrams read per wake-up of a task, as in uniqd.
const BURST: u64 = 64;

/// Command-line settings.
struct Args {
    udp: Option<SocketAddr>,
    tcp: Option<SocketAddr>,
    count_file: std::path::PathBuf,
    workers: usize,
    receive_buffer: usize,
    mmsg: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        udp: None,
        tcp: None,
        count_file: std::path::PathBuf::new(),
        workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        // uniqd's default (`--syslog-receive-buffer`).
        receive_buffer: 8 << 20,
        mmsg: false,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        if flag == "--mmsg" {
            args.mmsg = true;
            continue;
        }
        let value = iter.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag}: {e}");
        match flag.as_str() {
            "--udp" => args.udp = Some(value.parse().map_err(|e| bad(&e))?),
            "--tcp" => args.tcp = Some(value.parse().map_err(|e| bad(&e))?),
            "--count-file" => args.count_file = value.into(),
            "--workers" => args.workers = value.parse().map_err(|e| bad(&e))?,
            "--receive-buffer" => args.receive_buffer = value.parse().map_err(|e| bad(&e))?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.count_file.as_os_str().is_empty() || args.udp.is_none() == args.tcp.is_none() {
        return Err("one of --udp ADDR / --tcp ADDR, and --count-file PATH, are required".into());
    }
    Ok(args)
}

/// One UDP socket of the `SO_REUSEPORT` group, as uniqd binds them.
fn udp_socket(addr: SocketAddr, receive_buffer: usize) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    socket.set_recv_buffer_size(receive_buffer)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

async fn count_datagrams(socket: UdpSocket, count: Arc<AtomicU64>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        if socket.recv(&mut buf).await.is_err() {
            continue;
        }
        let mut n: u64 = 1;
        while n < BURST && socket.try_recv(&mut buf).is_ok() {
            n += 1;
        }
        // Relaxed: a statistic read by the reporter task; no other memory depends on it.
        count.fetch_add(n, Ordering::Relaxed);
    }
}

async fn count_lines(listener: TcpListener, count: Arc<AtomicU64>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let count = Arc::clone(&count);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            while let Ok(n @ 1..) = stream.read(&mut buf).await {
                let lines = memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
                // Relaxed: as above.
                count.fetch_add(lines, Ordering::Relaxed);
            }
        });
    }
}

fn main() -> io::Result<()> {
    let args = parse_args().map_err(|msg| io::Error::new(io::ErrorKind::InvalidInput, msg))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .enable_all()
        .build()?;
    let count = Arc::new(AtomicU64::new(0));
    // The reporter: a plain thread, off the runtime's workers.
    let (reported, path) = (Arc::clone(&count), args.count_file.clone());
    std::thread::spawn(move || loop {
        // Relaxed: see count_datagrams.
        let total = reported.load(Ordering::Relaxed).to_string();
        if std::fs::write(&path, total).is_err() {
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(50));
    });
    runtime.block_on(async {
        if let Some(addr) = args.udp {
            for _ in 0..args.workers {
                let socket = udp_socket(addr, args.receive_buffer)?;
                if args.mmsg {
                    tokio::spawn(mmsg::count_datagrams(socket, Arc::clone(&count)));
                } else {
                    tokio::spawn(count_datagrams(socket, Arc::clone(&count)));
                }
            }
        }
        if let Some(addr) = args.tcp {
            tokio::spawn(count_lines(
                TcpListener::bind(addr).await?,
                Arc::clone(&count),
            ));
        }
        std::future::pending::<io::Result<()>>().await
    })
}

/// `--mmsg`: `recvmmsg(2)`, up to BURST datagrams per system call.
#[allow(unsafe_code)]
mod mmsg {
    use std::os::fd::AsRawFd as _;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use tokio::io::Interest;
    use tokio::net::UdpSocket;

    const SLOT: usize = 8192;
    const N: usize = super::BURST as usize;

    /// BURST buffers and the headers pointing at them.
    struct Slots {
        _bufs: Vec<u8>,
        _iovecs: Vec<libc::iovec>,
        headers: Vec<libc::mmsghdr>,
    }

    // SAFETY: the raw pointers in `headers` and `_iovecs` point only into the heap buffers of
    // this same value, which move (between threads) together with it and are never resized.
    unsafe impl Send for Slots {}

    impl Slots {
        fn new() -> Self {
            let mut bufs = vec![0u8; SLOT * N];
            let mut iovecs: Vec<libc::iovec> = bufs
                .chunks_mut(SLOT)
                .map(|b| libc::iovec {
                    iov_base: b.as_mut_ptr().cast(),
                    iov_len: b.len(),
                })
                .collect();
            let headers = iovecs
                .iter_mut()
                .map(|iov| {
                    // SAFETY: a plain C struct; all zeroes is valid (no name, no control data).
                    let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    h.msg_hdr.msg_iov = iov;
                    h.msg_hdr.msg_iovlen = 1;
                    h
                })
                .collect();
            Self {
                _bufs: bufs,
                _iovecs: iovecs,
                headers,
            }
        }
    }

    pub(super) async fn count_datagrams(socket: UdpSocket, count: Arc<AtomicU64>) {
        let mut slots = Slots::new();
        let fd = socket.as_raw_fd();
        loop {
            if socket.readable().await.is_err() {
                continue;
            }
            let got = socket.try_io(Interest::READABLE, || {
                // SAFETY: N headers, each pointing at its own SLOT bytes of the buffers, all
                // alive and unmoved; the kernel writes the buffers and msg_len.
                let n = unsafe {
                    libc::recvmmsg(
                        fd,
                        slots.headers.as_mut_ptr(),
                        N as libc::c_uint,
                        libc::MSG_DONTWAIT,
                        std::ptr::null_mut(),
                    )
                };
                u64::try_from(n).map_err(|_| std::io::Error::last_os_error())
            });
            if let Ok(n) = got {
                // Relaxed: a statistic, as in the plain receiver.
                count.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}
