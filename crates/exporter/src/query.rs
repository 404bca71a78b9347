//! Reading one parameter of a query string, for the JSON endpoints of the metrics port
//! (`/stats?limit=`, `/api/v1/unique?window=`, `/api/v1/unique/series?lookback=&step=`).

/// A parameter given more than once (`?limit=1&limit=2`): the endpoints refuse to guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeated;

/// The value of the parameter `name` in `query` (without the `?`): `None` when it is absent,
/// `""` for `name` or `name=`. Other parameters are ignored. Values are not percent-decoded:
/// the parameters read this way only take ASCII letters and digits, so an encoded value is
/// refused as invalid by its parser.
///
/// ```
/// use uniqd_exporter::query::{single_param, Repeated};
///
/// assert_eq!(single_param(Some("a=1&limit=5"), "limit"), Ok(Some("5")));
/// assert_eq!(single_param(Some("limit"), "limit"), Ok(Some("")));
/// assert_eq!(single_param(Some("a=1"), "limit"), Ok(None));
/// assert_eq!(single_param(None, "limit"), Ok(None));
/// assert_eq!(single_param(Some("limit=1&limit=1"), "limit"), Err(Repeated));
/// ```
///
/// # Errors
///
/// [`Repeated`] when `name` appears more than once.
pub fn single_param<'q>(query: Option<&'q str>, name: &str) -> Result<Option<&'q str>, Repeated> {
    let mut found = None;
    for pair in query.unwrap_or_default().split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != name {
            continue;
        }
        if found.is_some() {
            return Err(Repeated);
        }
        found = Some(value);
    }
    Ok(found)
}
