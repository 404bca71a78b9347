//! What the UDP and TCP sides share: one received message to a counted log
//! ([`record_message`]: header, then the log's one format switch in `record_line`), reading
//! what a socket holds without waiting, and the stop signal.

use std::io;
use std::sync::Arc;

use tokio::sync::watch;
use uniqd_core::Views;

use super::header::message;
use crate::fields::{with_reader, FieldMap, FieldSpec, Syntax};
use crate::record::record_log;

/// Where the logs of syslog messages go, and how their fields are read: the views, and the
/// server's field names (the same `--ip-field` and friends as `POST /logs`).
#[derive(Debug, Clone)]
pub(super) struct Sink {
    pub(super) views: Views,
    pub(super) fields: Arc<FieldMap>,
}

/// Resolves once `run_syslog` says stop: the one value it ever sends, seen as a change.
/// (`changed` reads an atomic version, no lock, cheap enough to poll per datagram.) Every
/// receiver is cloned from one that has not seen the change yet, so none misses it.
pub(super) async fn until_stopped(stopped: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: `run_syslog` returned, so stop too.
    let _ = stopped.changed().await;
}

/// Reads what the kernel already holds for `socket` without waiting: one non-blocking
/// `recv`, straight on the socket. (tokio's `try_recv`/`try_read` answer `WouldBlock` until
/// the runtime has seen the socket readable, which a shutdown right after a burst need not
/// have; the drain on shutdown must not depend on that.)
pub(super) fn read_now(socket: socket2::SockRef<'_>, buf: &mut [u8]) -> io::Result<usize> {
    use std::io::Read;
    (&*socket).read(buf)
}

/// Records one syslog message (header, then the log it carries); whether it was counted.
pub(super) fn record_message(bytes: &[u8], sink: &Sink) -> bool {
    message(bytes).is_ok_and(|line| record_line(line, sink))
}

/// Records the one log a syslog message carries: the single place a message's format is
/// chosen. A JSON object, or a combined/common log format line (nginx's default `combined`,
/// HAProxy's `option httplog clf`), goes to the same fields stage as `POST /logs` with
/// `application/json` or `text/plain`.
fn record_line(line: &[u8], sink: &Sink) -> bool {
    let start = line
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(line.len());
    let line = &line[start..];
    let syntax = match line.first() {
        None => return false,
        Some(b'{') => Syntax::Json,
        Some(_) => Syntax::Clf,
    };
    let spec = FieldSpec {
        syntax,
        map: &sink.fields,
    };
    let views = &sink.views;
    with_reader(|reader| record_log(reader, spec, line, views, views.arrival())).is_ok()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use uniqd_core::UniqueCounter;

    #[test]
    fn a_message_is_one_json_log_or_access_log_line() {
        let views = Views::new(Arc::new(UniqueCounter::new()));
        let sink = Sink {
            views: views.clone(),
            fields: Arc::new(FieldMap::standard().clone()),
        };
        assert!(record_message(
            b"<190>Dec  7 16:37:52 web nginx: {\"ip\":\"1.2.3.4\",\"url\":\"/a\"}",
            &sink
        ));
        assert!(record_message(
            b"<165>1 - - - - - -  {\"ip\":\"1.2.3.5\"}\n",
            &sink
        ));
        // nginx's default `combined` format, and a common-format line over RFC 5424.
        assert!(record_message(
            b"<190>Dec  7 16:37:52 web nginx: 1.2.3.8 - - [07/Dec/2026:16:37:52 +0000] \"GET /p?q=1 HTTP/1.1\" 200 1 \"-\" \"curl/7.88.1\"",
            &sink
        ));
        assert!(record_message(
            b"<134>1 2026-12-07T16:37:52Z web haproxy - - - 1.2.3.9 - - [07/Dec/2026:16:37:52 +0000] \"GET / HTTP/1.1\" 200 5",
            &sink
        ));
        for bad in [
            &b"<190>Dec  7 16:37:52 web nginx: {\"ip\":\"1.2.3.400\"}"[..],
            b"<190>Dec  7 16:37:52 web nginx: {\"ip\":\"1.2.3.6\"",
            b"{\"ip\":\"1.2.3.7\"}",
            b"<190>Dec  7 16:37:52 web nginx: not an access log line",
        ] {
            assert!(!record_message(bad, &sink));
        }
        assert_eq!(views.counter().estimate(), 4);
    }
}
