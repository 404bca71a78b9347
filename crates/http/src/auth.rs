//! Optional bearer-token authentication (RFC 6750), for `POST /logs` and
//! for the metrics server's `/metrics`.
//!
//! * **Off unless configured.** A server without [`BearerTokens`] is open,
//!   as before; with them, a request needs `Authorization: Bearer <token>`
//!   naming one of the tokens, else it gets 401 with
//!   `WWW-Authenticate: Bearer` before its body is read.
//! * **Several tokens** can be valid at once, so a token can be rotated
//!   without downtime (add the new one, move clients, remove the old one).
//! * **Constant time.** The presented token is compared with every
//!   configured token using [`subtle`]'s constant-time equality, and the
//!   results are combined without branching, so the time taken does not
//!   reveal how many leading bytes matched or which token did. What it does
//!   reveal is whether the lengths differ, which says nothing about the
//!   bytes.
//! * **Never printed.** `Debug` shows only how many tokens there are; the
//!   tokens themselves are not logged anywhere.

use std::fmt;

use hyper::header::HeaderValue;
use subtle::{Choice, ConstantTimeEq as _};

/// `WWW-Authenticate` value sent with every 401.
pub const WWW_AUTHENTICATE_BEARER: HeaderValue = HeaderValue::from_static("Bearer realm=\"uniqd\"");

/// A non-empty set of accepted bearer tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerTokens {
    tokens: Vec<Box<[u8]>>,
}

impl BearerTokens {
    /// Accepts `tokens` (at least one). Each must be an RFC 6750 `b64token`:
    /// letters, digits and `-._~+/`, optionally followed by `=` padding.
    ///
    /// # Errors
    ///
    /// A message naming the problem (never the token itself).
    pub fn new<I, S>(tokens: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut accepted = Vec::new();
        for (i, token) in tokens.into_iter().enumerate() {
            let token = token.as_ref();
            if !is_b64token(token.as_bytes()) {
                return Err(format!(
                    "token #{} is not a valid bearer token: use 1 or more letters, digits or \
                     -._~+/ (then optional = padding), no spaces",
                    i + 1
                ));
            }
            accepted.push(token.as_bytes().into());
        }
        if accepted.is_empty() {
            return Err("no bearer token given".to_owned());
        }
        Ok(Self { tokens: accepted })
    }

    /// How many tokens are accepted.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Always `false`: a `BearerTokens` holds at least one token.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Whether an `Authorization` header value carries one of the tokens
    /// (scheme `Bearer`, case-insensitive).
    #[must_use]
    pub fn verify(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(presented) = authorization.and_then(|v| bearer_credentials(v.as_bytes())) else {
            return false;
        };
        // Every token is compared, whatever matched before: no early exit.
        let matched = self
            .tokens
            .iter()
            .fold(Choice::from(0), |acc, token| acc | token.ct_eq(presented));
        bool::from(matched)
    }
}

impl fmt::Debug for BearerTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BearerTokens(<{} redacted>)", self.tokens.len())
    }
}

/// The credentials of `Bearer <credentials>`, or `None` for another scheme.
fn bearer_credentials(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer";
    if value.len() <= SCHEME.len() || !value[..SCHEME.len()].eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    let rest = &value[SCHEME.len()..];
    let credentials = rest.trim_ascii_start();
    // At least one space between scheme and credentials.
    (credentials.len() < rest.len()).then_some(credentials.trim_ascii_end())
}

/// RFC 6750: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &[u8]) -> bool {
    let body_len = token.len() - token.iter().rev().take_while(|&&b| b == b'=').count();
    body_len > 0
        && token[..body_len].iter().all(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).expect("valid header")
    }

    #[test]
    fn accepts_any_configured_token() {
        let tokens = BearerTokens::new(["s3cret-A", "token/B=="]).expect("valid");
        assert_eq!(tokens.len(), 2);
        assert!(tokens.verify(Some(&header("Bearer s3cret-A"))));
        assert!(tokens.verify(Some(&header("bearer token/B=="))));
        assert!(tokens.verify(Some(&header("BEARER   s3cret-A  "))));
    }

    #[test]
    fn rejects_everything_else() {
        let tokens = BearerTokens::new(["s3cret-A"]).expect("valid");
        for value in [
            "Bearer s3cret-a",
            "Bearer s3cret-A2",
            "Bearer s3cret-",
            "Bearer ",
            "Bearer",
            "Bearers3cret-A",
            "Basic czNjcmV0LUE=",
            "s3cret-A",
            "",
        ] {
            assert!(!tokens.verify(Some(&header(value))), "{value:?}");
        }
        assert!(!tokens.verify(None));
    }

    #[test]
    fn invalid_tokens_are_refused_without_echoing_them() {
        for bad in ["", "has space", "tab\tx", "==", "quote\"x", "é-token"] {
            let err = BearerTokens::new([bad]).expect_err(bad);
            assert!(err.contains("#1"), "{err}");
            if !bad.is_empty() {
                assert!(!err.contains(bad), "{err}");
            }
        }
        assert!(BearerTokens::new(Vec::<String>::new()).is_err());
    }

    #[test]
    fn debug_redacts() {
        let tokens = BearerTokens::new(["visible-if-leaked"]).expect("valid");
        let text = format!("{tokens:?}");
        assert_eq!(text, "BearerTokens(<1 redacted>)");
    }
}
