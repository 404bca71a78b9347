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
//! socket would feed only one receiving worker. Plain `send` per datagram, no `sendmmsg`: on
//! this machine one thread sends well above the service's target, and the benchmark quotes
//! what the receiver counted, not what was sent.

#![forbid(unsafe_code)]
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
}

#[derive(Clone, Copy)]
enum Target {
    Udp(SocketAddr),
    Tcp(SocketAddr),
}

fn parse_args() -> Result<Args, String> {
    let mut target = None;
    let (mut seconds, mut sockets, mut threads) = (10, 4, 1);
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
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let target = target.ok_or("--udp ADDR or --tcp ADDR is required")?;
    Ok(Args {
        target,
        seconds,
        sockets,
        threads,
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
fn send(target: Target, sockets: usize, seed: u64, duration: Duration) -> std::io::Result<u64> {
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
            'outer: loop {
                for chunk in pool.chunks(1024) {
                    for (i, message) in chunk.iter().enumerate() {
                        // A full socket buffer (ENOBUFS) or an ICMP error from a receiver
                        // that is restarting: the datagram is lost, as it would be for nginx.
                        if socks[i % socks.len()].send(message).is_ok() {
                            sent += 1;
                        }
                    }
                    if Instant::now() >= deadline {
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
            let (target, sockets) = (args.target, args.sockets);
            std::thread::spawn(move || send(target, sockets, 0x9E37_79B9 + t as u64, duration))
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
