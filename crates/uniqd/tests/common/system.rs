//! Debian's servers as test peers: finding their binaries (often in /usr/sbin, off a user's
//! PATH), a free loopback port for them, and HAProxy started on a generated configuration.

use std::process::{Child, Command, Stdio};

use uniqd_testkit::TempDir;

/// A free loopback TCP port (bound and closed: a parallel test could take it, which the
/// servers here would report by failing to start).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// The path of Debian's `name` (in /usr/sbin, often not on a user's PATH).
pub fn find_binary(name: &str) -> String {
    [format!("/usr/sbin/{name}"), name.to_owned()]
        .into_iter()
        .find(|b| Command::new(b).arg("-v").output().is_ok())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: `apt-get install {name}` (.ci/test installs it)")
        })
}

/// Debian's HAProxy in the foreground on a configuration written for its port; killed on drop.
pub struct Haproxy {
    child: Child,
    /// The loopback port the configuration was given.
    pub port: u16,
    _dir: TempDir,
}

impl Haproxy {
    /// Starts HAProxy on `config(port)` for a free `port`, in a temporary directory named
    /// after `name`.
    pub fn start(name: &str, config: impl FnOnce(u16) -> String) -> Self {
        let binary = find_binary("haproxy");
        let dir = TempDir::new(name);
        let port = free_port();
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config(port)).unwrap();
        let child = Command::new(binary)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start haproxy");
        Self {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
