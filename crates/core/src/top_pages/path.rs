//! From a log's `url` to the page path that [`TopPages`](super::TopPages) counts: the query
//! string and fragment cut off, optional normalisation, at most [`MAX_PATH_BYTES`] bytes.
//!
//! Everything happens in a caller-provided stack buffer, so the ingest path allocates nothing.

/// Longest stored path in bytes; longer ones are cut (on a character boundary).
pub const MAX_PATH_BYTES: usize = 256;

/// How a `url` is turned into the counted path (see [`normalize_path`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct PathOptions {
    /// Count `/a/` as `/a` (trailing slashes removed; `/` stays `/`).
    pub strip_trailing_slash: bool,
    /// For an absolute URL (`scheme://host/...`), lower-case the scheme and the host (ASCII
    /// only), so `HTTP://Example.COM/a` counts as `http://example.com/a`. The path itself is
    /// case-sensitive and never changed.
    pub lowercase_host: bool,
}

/// Writes the page path of `url` into `buf` and returns it:
///
/// 1. everything from the first `?` or `#` on is dropped;
/// 2. with [`PathOptions::lowercase_host`], the scheme and host of an absolute URL
///    (`scheme://authority...`) are lower-cased (ASCII), user information kept as it is;
/// 3. with [`PathOptions::strip_trailing_slash`], trailing `/` are removed, except the one
///    that makes up the whole path (`/`, or `http://h/`);
/// 4. the result is cut to its first [`MAX_PATH_BYTES`] bytes, on a character boundary, so all
///    URLs sharing such a prefix count as one page.
///
/// ```
/// use uniqd_core::{normalize_path, PathOptions, MAX_PATH_BYTES};
///
/// let mut buf = [0; MAX_PATH_BYTES];
/// let plain = PathOptions::default();
/// assert_eq!(normalize_path("/a/b?x=1#top", plain, &mut buf), "/a/b");
/// let all = PathOptions { strip_trailing_slash: true, lowercase_host: true };
/// assert_eq!(normalize_path("HTTP://Example.COM/A/?b", all, &mut buf), "http://example.com/A");
/// assert_eq!(normalize_path("/", all, &mut buf), "/");
/// ```
pub fn normalize_path<'b>(
    url: &str,
    options: PathOptions,
    buf: &'b mut [u8; MAX_PATH_BYTES],
) -> &'b str {
    if options == PathOptions::default() {
        // Nothing to rewrite: copy the (cut) path and stop.
        let path = plain_path(url);
        buf[..path.len()].copy_from_slice(path.as_bytes());
        return std::str::from_utf8(&buf[..path.len()]).unwrap_or_default();
    }
    let mut path = strip_query(url);

    // Where the authority (`user@host:port`) ends, for an absolute URL.
    let authority = authority_range(path);
    if options.strip_trailing_slash {
        let keep = authority.map_or(1, |(_, end)| end + 1);
        while path.len() > keep && path.ends_with('/') {
            path = &path[..path.len() - 1];
        }
    }

    let len = cut(path).len();
    buf[..len].copy_from_slice(&path.as_bytes()[..len]);
    if options.lowercase_host {
        if let Some((host_start, host_end)) = authority {
            // The scheme: everything before `://`.
            let scheme_end = host_start.saturating_sub(3).min(len);
            buf[..scheme_end].make_ascii_lowercase();
            // The host: after the last `@` of the authority (user information is kept).
            let host_from = path[host_start..host_end]
                .rfind('@')
                .map_or(host_start, |at| host_start + at + 1);
            let (from, to) = (host_from.min(len), host_end.min(len));
            buf[from..to].make_ascii_lowercase();
        }
    }
    // Only ASCII letters were changed and the cut is on a char boundary, so `buf[..len]` is the
    // UTF-8 of a prefix of `path`; the fallback is unreachable but cheaper than a panic path.
    std::str::from_utf8(&buf[..len]).unwrap_or_default()
}

/// The page path of a URL without [`PathOptions`]: `url` up to its first `?` or `#`, cut to
/// [`MAX_PATH_BYTES`] on a character boundary; a sub-slice of `url`, so no copy is needed.
pub(super) fn plain_path(url: &str) -> &str {
    cut(strip_query(url))
}

/// `url` up to its first `?` or `#` (memchr2: a byte loop cost a third of a record).
fn strip_query(url: &str) -> &str {
    let end = memchr::memchr2(b'?', b'#', url.as_bytes()).unwrap_or(url.len());
    &url[..end]
}

/// The first [`MAX_PATH_BYTES`] bytes of `path`, cut on a character boundary.
fn cut(path: &str) -> &str {
    let mut len = path.len().min(MAX_PATH_BYTES);
    while !path.is_char_boundary(len) {
        len -= 1;
    }
    &path[..len]
}

/// For `scheme://authority[/...]`: the byte range of the authority. `None` for anything else
/// (a path, `//host`, or text without a valid scheme).
fn authority_range(url: &str) -> Option<(usize, usize)> {
    // A path (the usual `url` of an ingress log) has no scheme: skip the substring search.
    if url.starts_with('/') {
        return None;
    }
    let colon = url.find("://")?;
    let scheme = &url.as_bytes()[..colon];
    let valid = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !valid {
        return None;
    }
    let start = colon + 3;
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    Some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(url: &str, strip: bool, lower: bool) -> String {
        let mut buf = [0; MAX_PATH_BYTES];
        let options = PathOptions {
            strip_trailing_slash: strip,
            lowercase_host: lower,
        };
        normalize_path(url, options, &mut buf).to_owned()
    }

    #[test]
    fn query_and_fragment_are_cut() {
        for (url, want) in [
            ("/a?b=1", "/a"),
            ("/a#f", "/a"),
            ("/a#f?x", "/a"),
            ("/a?x#f", "/a"),
            ("?only", ""),
            ("", ""),
            ("/", "/"),
            ("/A/B", "/A/B"),
        ] {
            assert_eq!(norm(url, false, false), want, "{url}");
        }
    }

    #[test]
    fn trailing_slashes() {
        for (url, strip, want) in [
            ("/a/", true, "/a"),
            ("/a//", true, "/a"),
            ("/a/", false, "/a/"),
            ("/", true, "/"),
            ("//", true, "/"),
            ("/a/?q", true, "/a"),
            ("http://h/", true, "http://h/"),
            ("http://h/a/", true, "http://h/a"),
            ("http://h", true, "http://h"),
        ] {
            assert_eq!(norm(url, strip, false), want, "{url}");
        }
    }

    #[test]
    fn host_lower_casing() {
        for (url, want) in [
            ("http://Example.com/a?b", "http://example.com/a"),
            ("HTTPS://WWW.X.ORG:8443/Path", "https://www.x.org:8443/Path"),
            ("http://User:PW@Host.COM/P", "http://User:PW@host.com/P"),
            ("http://HOST", "http://host"),
            ("/Not/A/Host", "/Not/A/Host"),
            ("//Host/p", "//Host/p"),
            ("1http://X/p", "1http://X/p"),
            ("http://[FE80::1]/P", "http://[fe80::1]/P"),
        ] {
            assert_eq!(norm(url, false, true), want, "{url}");
        }
        assert_eq!(
            norm("HTTP://Example.COM/A", false, false),
            "HTTP://Example.COM/A"
        );
    }

    #[test]
    fn long_paths_are_cut_on_a_char_boundary() {
        let long = format!("/{}", "x".repeat(1000));
        assert_eq!(norm(&long, false, false).len(), MAX_PATH_BYTES);
        // 'é' is two bytes: a cut in its middle backs off to before it.
        let accented = format!("/{}", "é".repeat(200));
        let cut = norm(&accented, false, false);
        assert_eq!(cut.len(), MAX_PATH_BYTES - 1);
        assert!(accented.starts_with(&cut));
        // A host cut off by the limit is still lower-cased as far as it goes.
        let host = format!("http://{}", "A".repeat(300));
        assert_eq!(
            norm(&host, false, true),
            format!("http://{}", "a".repeat(249))
        );
    }
}
