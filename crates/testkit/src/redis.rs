//! A real `redis-server` for tests: started on a free loopback port, stopped on drop, with a
//! minimal RESP client (std only) that pipelines commands. The server can be killed and
//! started again on the same port (an outage without persistence), or run in cluster mode.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::poll::block_until;
use crate::TempDir;

/// How long redis-server may take to start, restart or form its cluster.
const START_LIMIT: Duration = Duration::from_secs(10);

/// A RESP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Status(String),
    /// `-ERR ...`
    Error(String),
    /// `:42`
    Int(i64),
    /// `$n ...` (`None` for a nil bulk)
    Bulk(Option<Vec<u8>>),
    /// `*n ...`
    Array(Vec<Reply>),
}

impl Reply {
    /// The integer of an integer reply; panics on any other reply.
    pub fn int(&self) -> i64 {
        match self {
            Reply::Int(n) => *n,
            other => panic!("expected an integer reply, got {other:?}"),
        }
    }

    /// The bytes of a non-nil bulk reply; panics on any other reply.
    pub fn bytes(self) -> Vec<u8> {
        match self {
            Reply::Bulk(Some(b)) => b,
            other => panic!("expected a bulk reply, got {other:?}"),
        }
    }

    /// A bulk reply as text; panics on any other reply.
    pub fn text(self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }
}

/// A `redis-server` child process bound to 127.0.0.1, with persistence off.
pub struct RedisServer {
    child: Option<Child>,
    /// The loopback port it listens on.
    pub port: u16,
    cluster: bool,
    dir: TempDir,
}

impl RedisServer {
    /// Starts a standalone `redis-server`; fails the test with a clear message if the binary
    /// is missing (`.ci/test` installs Debian's `redis-server`).
    ///
    /// The port comes from binding port 0 and closing it, so a parallel test can pick the
    /// same one; the server that answers is therefore checked to be our own child (by
    /// `INFO server`'s `process_id`), and another port is tried if it is not.
    pub fn start() -> Self {
        Self::start_mode(false)
    }

    /// Starts a one-node Redis Cluster (cluster mode, all 16,384 slots assigned to it), so
    /// that commands touching keys of different hash slots fail with `CROSSSLOT`.
    pub fn start_cluster_node() -> Self {
        let server = Self::start_mode(true);
        let mut conn = server.connect();
        let reply = conn.cmd(&[b"CLUSTER", b"ADDSLOTSRANGE", b"0", b"16383"]);
        assert_eq!(
            reply,
            Reply::Status("OK".to_owned()),
            "CLUSTER ADDSLOTSRANGE"
        );
        block_until("cluster_state:ok", START_LIMIT, || {
            let info = conn.cmd(&[b"CLUSTER", b"INFO"]).text();
            if info.contains("cluster_state:ok") {
                Ok(())
            } else {
                Err(info)
            }
        });
        server
    }

    fn start_mode(cluster: bool) -> Self {
        for _ in 0..10 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free loopback port")
                .port();
            let mut server = Self {
                child: None,
                port,
                cluster,
                dir: TempDir::new("redis"),
            };
            if server.try_spawn() {
                return server;
            }
        }
        panic!("could not start a redis-server of our own on a free port in 10 attempts");
    }

    /// Spawns the server on `self.port`; false if the port turned out to be taken.
    fn try_spawn(&mut self) -> bool {
        let mut command = Command::new("redis-server");
        command
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(self.dir.path());
        if self.cluster {
            command.args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}); install it: apt-get install redis-server")
            });
        let pid = child.id();
        self.child = Some(child);
        block_until("redis-server to answer", START_LIMIT, || {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Some(false); // Exited: most likely the port was taken.
            }
            let mut conn = self.try_connect().ok()?;
            let Reply::Bulk(Some(info)) = conn.cmd(&[b"INFO", b"server"]) else {
                return None;
            };
            let ours = format!("process_id:{pid}\r\n");
            if String::from_utf8_lossy(&info).contains(&ours) {
                return Some(true);
            }
            self.kill();
            Some(false)
        })
    }

    /// `redis://127.0.0.1:<port>/`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (SIGKILL: no shutdown save, like a crash) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a new, empty server on the same port after [`kill`](Self::kill): Redis restarted
    /// without persistence. Retries for a few seconds if the port is briefly unavailable.
    pub fn restart(&mut self) {
        self.kill();
        let what = format!("redis-server to restart on port {}", self.port);
        block_until(what, START_LIMIT, || self.try_spawn());
    }

    fn try_connect(&self) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Conn {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// A new connection; panics if the server does not accept it.
    pub fn connect(&self) -> Conn {
        self.try_connect().expect("connect to redis-server")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // The directory goes with `self.dir`, after the server is gone.
        self.kill();
    }
}

/// One connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    /// What the server has done so far, for cost measurements: the sum of `calls=` over every
    /// command in `INFO commandstats` except `info`, `config` and `memory` (a test's own
    /// probes), and `total_net_input_bytes` / `total_net_output_bytes` from `INFO stats`.
    pub fn traffic(&mut self) -> (u64, u64, u64) {
        let commands = self.cmd(&[b"INFO", b"commandstats"]).text();
        let calls = commands
            .lines()
            .filter(|l| l.starts_with("cmdstat_"))
            .filter(|l| {
                !["cmdstat_info:", "cmdstat_config", "cmdstat_memory"]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .filter_map(|l| {
                l.split("calls=")
                    .nth(1)?
                    .split(',')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum();
        let stats = self.cmd(&[b"INFO", b"stats"]).text();
        let field = |name: &str| -> u64 {
            stats
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok())
                .unwrap_or(0)
        };
        (
            calls,
            field("total_net_input_bytes"),
            field("total_net_output_bytes"),
        )
    }

    /// Sends one command and reads its reply.
    pub fn cmd(&mut self, args: &[&[u8]]) -> Reply {
        self.send(args);
        self.read()
    }

    /// Sends a command without reading its reply (pipelining); call `read` once per command.
    pub fn send(&mut self, args: &[&[u8]]) {
        let mut buf = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            buf.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            buf.extend_from_slice(arg);
            buf.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&buf).expect("write to redis");
    }

    /// Reads one reply.
    pub fn read(&mut self) -> Reply {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read from redis");
        assert!(!line.is_empty(), "redis-server closed the connection");
        let line = line.trim_end_matches("\r\n");
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Reply::Status(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Int(rest.parse().expect("integer reply")),
            "$" => {
                let len: i64 = rest.parse().expect("bulk length");
                if len < 0 {
                    return Reply::Bulk(None);
                }
                let mut data = vec![0; len as usize + 2];
                self.reader.read_exact(&mut data).expect("bulk body");
                data.truncate(len as usize);
                Reply::Bulk(Some(data))
            }
            "*" => {
                let len: i64 = rest.parse().expect("array length");
                Reply::Array((0..len.max(0)).map(|_| self.read()).collect())
            }
            other => panic!("unexpected RESP type {other:?} in {line:?}"),
        }
    }

    /// `PFCOUNT key`.
    pub fn pfcount(&mut self, key: &str) -> u64 {
        let n = self.cmd(&[b"PFCOUNT", key.as_bytes()]).int();
        u64::try_from(n).expect("PFCOUNT is never negative")
    }

    /// `PFADD key element...`, in pipelined batches of 1,000.
    pub fn pfadd_all<S: AsRef<str>>(&mut self, key: &str, elements: &[S]) {
        let batches: Vec<_> = elements.chunks(1_000).collect();
        for batch in &batches {
            let mut args: Vec<&[u8]> = vec![b"PFADD", key.as_bytes()];
            args.extend(batch.iter().map(|s| s.as_ref().as_bytes()));
            self.send(&args);
        }
        for _ in &batches {
            let reply = self.read();
            assert!(matches!(reply, Reply::Int(_)), "PFADD: {reply:?}");
        }
    }

    /// How many times the server executed `command` since start or `CONFIG RESETSTAT`
    /// (from `INFO commandstats`; 0 when it never ran).
    pub fn command_calls(&mut self, command: &str) -> u64 {
        let info = self.cmd(&[b"INFO", b"commandstats"]).text();
        let prefix = format!("cmdstat_{}:calls=", command.to_ascii_lowercase());
        info.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map_or(0, |rest| {
                rest.split(',')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("calls=N")
            })
    }
}
