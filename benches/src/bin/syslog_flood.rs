//! The load generator of the syslog benchmark (`benches/load/syslog.sh`): sends nginx-style
//! access-log messages (RFC 3164 header, the JSON `log_format` of docs/syslog.md, a random
//! IPv4 address and one of 100 paths) as fast as it can for a fixed time, over UDP (one
//! datagram per message, like nginx) or TCP (newline framing, many messages per write, like
//! rsyslog), then prints how many it sent.
//!
//! ```text
//! syslog-flood (--udp ADDR | --tcp ADDR) [--seconds 10] [--sockets 4] [--threads 1]
//! ```
//!
//! `--sockets` UDP sockets (or TCP connections) per thread, used in turn: the receiver's
//! `SO_REUSEPORT` group spreads datagrams over its sockets by source port, so one sending
//! socket would feed only one receiving worker. Over UDP it sends 64 datagrams per system call
//! (`sendmmsg`, Linux), so that the sender, which shares the two cores with the receiver,
//! takes as little of them as it can; `--batch 1` makes one system call per datagram, as nginx
//! does. The benchmark quotes what the receiver counted, not what was sent.
// Its report on stdout (and usage errors on stderr) is what the script reads.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write as _;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Distinct messages generated up front and sent round-robin (random addresses: the receiver
/// sees 65,536 distinct clients per thread, enough to keep the sketch in its dense phase).
const POOL: usize = 65_536;

/// Command-line settings.
struct Args {
    target: Target,
    seconds: u64,
    sockets: usize,
    threads: usize,
    batch: usize,
}

#[derive(Clone, Copy)]
enum Target {
    Udp(SocketAddr),
    Tcp(SocketAddr),
}

fn parse_args() -> Result<Args, String> {
    let mut target = None;
    let (mut seconds, mut sockets, mut threads, mut batch) = (10, 4, 1, 64);
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let value = iter.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let addr = || value.parse().map_err(|e| format!("{flag}: {e}"));
        let number = || value.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--udp" => target = Some(Target::Udp(addr()?)),
            "--tcp" => target = Some(Target::Tcp(addr()?)),
            "--seconds" => seconds = number()? as u64,
            "--sockets" => sockets = number()?.max(1),
            "--threads" => threads = number()?.max(1),
            "--batch" => batch = number()?.clamp(1, 1024),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let target = target.ok_or("--udp ADDR or --tcp ADDR is required")?;
    Ok(Args {
        target,
        seconds,
        sockets,
        threads,
        batch,
    })
}

/// A small xorshift generator: the load generator needs spread, not quality.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// RFC 3339 UTC time of `secs` since the epoch (civil-from-days, Howard Hinnant's algorithm).
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}+00:00")
}

/// `POOL` messages, each one line as nginx sends it (without a trailing newline).
fn messages(seed: u64) -> Vec<Vec<u8>> {
    // The clock is after 1970 on any machine that runs this; if not, the epoch will do.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let time = rfc3339(now);
    let mut rng = Rng(seed | 1);
    (0..POOL)
        .map(|_| {
            let r = rng.next();
            let ip = [1 + (r % 223) as u8, (r >> 8) as u8, (r >> 16) as u8, 1 + (r >> 24) as u8 % 254];
            format!(
                "<190>Dec  7 16:37:52 web1 nginx: {{\"timestamp\":\"{time}\",\"ip\":\"{}.{}.{}.{}\",\"url\":\"/page/{}\"}}",
                ip[0],
                ip[1],
                ip[2],
                ip[3],
                (r >> 32) % 100
            )
            .into_bytes()
        })
        .collect()
}

/// Sends for `duration` from one thread; returns the messages sent.
fn send(
    target: Target,
    sockets: usize,
    batch: usize,
    seed: u64,
    duration: Duration,
) -> std::io::Result<u64> {
    let pool = messages(seed);
    let deadline = Instant::now() + duration;
    let mut sent = 0u64;
    match target {
        Target::Udp(addr) => {
            let bind = if addr.is_ipv4() {
                "127.0.0.1:0"
            } else {
                "[::1]:0"
            };
            let socks = (0..sockets)
                .map(|_| UdpSocket::bind(bind).and_then(|s| s.connect(addr).map(|()| s)))
                .collect::<std::io::Result<Vec<_>>>()?;
            let mut batches = mmsg::Batches::new(&pool, batch);
            'outer: loop {
                for (i, chunk) in batches.iter_mut().enumerate() {
                    // A full socket buffer (ENOBUFS) or an ICMP error from a receiver that is
                    // restarting: the datagrams are lost, as they would be for nginx.
                    sent += chunk.send(&socks[i % socks.len()]);
                    if i % 16 == 0 && Instant::now() >= deadline {
                        break 'outer;
                    }
                }
            }
        }
        Target::Tcp(addr) => {
            let mut conns = (0..sockets)
                .map(|_| TcpStream::connect(addr))
                .collect::<std::io::Result<Vec<_>>>()?;
            // Newline framing, ~64 KiB per write.
            let mut batches = Vec::new();
            for chunk in pool.chunks(512) {
                let mut batch = Vec::with_capacity(chunk.len() * 100);
                for message in chunk {
                    batch.extend_from_slice(message);
                    batch.push(b'\n');
                }
                batches.push((batch, chunk.len() as u64));
            }
            'tcp: loop {
                for (i, (batch, lines)) in batches.iter().enumerate() {
                    conns[i % sockets].write_all(batch)?;
                    sent += lines;
                    if Instant::now() >= deadline {
                        break 'tcp;
                    }
                }
            }
        }
    }
    Ok(sent)
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("syslog-flood: {message}");
            std::process::exit(2);
        }
    };
    let duration = Duration::from_secs(args.seconds);
    let started = Instant::now();
    let handles: Vec<_> = (0..args.threads)
        .map(|t| {
            let (target, sockets, batch) = (args.target, args.sockets, args.batch);
            std::thread::spawn(move || {
                send(target, sockets, batch, 0x9E37_79B9 + t as u64, duration)
            })
        })
        .collect();
    let mut sent = 0;
    for handle in handles {
        match handle.join() {
            Ok(Ok(n)) => sent += n,
            Ok(Err(error)) => {
                eprintln!("syslog-flood: {error}");
                std::process::exit(1);
            }
            Err(_) => std::process::exit(1),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "sent {sent} messages in {secs:.2} s ({:.0}/s)",
        sent as f64 / secs
    );
}

/// `sendmmsg(2)`: many datagrams per system call. The only unsafe code of the benchmarks.
#[allow(unsafe_code)]
mod mmsg {
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd as _;

    /// Headers for a run of messages of the pool, pointing into it.
    pub(super) struct Chunk<'a> {
        headers: Vec<libc::mmsghdr>,
        // The headers point into these two: kept alive (and never moved: a Vec's buffer stays
        // put while it is not resized) as long as the headers.
        _iovecs: Vec<libc::iovec>,
        _pool: std::marker::PhantomData<&'a [Vec<u8>]>,
    }

    /// The pool cut into chunks of `batch` messages.
    pub(super) struct Batches<'a>(Vec<Chunk<'a>>);

    impl<'a> Batches<'a> {
        pub(super) fn new(pool: &'a [Vec<u8>], batch: usize) -> Self {
            Self(
                pool.chunks(batch)
                    .map(|messages| {
                        let mut iovecs: Vec<libc::iovec> = messages
                            .iter()
                            .map(|m| libc::iovec {
                                // sendmmsg only reads through it; the pool outlives the chunk.
                                iov_base: m.as_ptr() as *mut libc::c_void,
                                iov_len: m.len(),
                            })
                            .collect();
                        let headers = iovecs
                            .iter_mut()
                            .map(|iov| {
                                // SAFETY: mmsghdr is a plain C struct; all zeroes is a valid
                                // value (no address: the socket is connected; no control data).
                                let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
                                header.msg_hdr.msg_iov = iov;
                                header.msg_hdr.msg_iovlen = 1;
                                header
                            })
                            .collect();
                        Chunk {
                            headers,
                            _iovecs: iovecs,
                            _pool: std::marker::PhantomData,
                        }
                    })
                    .collect(),
            )
        }

        pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Chunk<'a>> {
            self.0.iter_mut()
        }
    }

    impl Chunk<'_> {
        /// Sends the chunk's datagrams on `socket` (blocking); returns how many went out.
        pub(super) fn send(&mut self, socket: &UdpSocket) -> u64 {
            let len = self.headers.len() as libc::c_uint;
            // SAFETY: `headers` holds `len` initialised mmsghdr values whose iovecs point into
            // `_iovecs` and the pool, both alive and unmoved for the lifetime of `self`; the
            // kernel only reads the buffers and writes each header's `msg_len`.
            let sent =
                unsafe { libc::sendmmsg(socket.as_raw_fd(), self.headers.as_mut_ptr(), len, 0) };
            u64::try_from(sent).unwrap_or(0)
        }
    }
}
