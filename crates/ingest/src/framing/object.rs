//! [`Framing::Object`](super::Framing::Object): the whole of a body (or datagram) is one JSON
//! object, surrounded by optional JSON whitespace.

use uniqd_core::Views;

use crate::fields::{with_reader, FieldSpec, LineError};
use crate::record::record_log;

/// Why a single-object body counted nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectError {
    /// Nothing but JSON whitespace.
    Blank,
    /// The object was rejected.
    Invalid(LineError),
}

/// Records the one log object `bytes` holds in `views` (default field names), reading the
/// arrival time once.
///
/// ```
/// use std::sync::Arc;
/// use uniqd_core::{UniqueCounter, Views};
/// use uniqd_ingest::framing::object::{record_object, ObjectError};
///
/// let views = Views::new(Arc::new(UniqueCounter::new()));
/// assert_eq!(record_object(br#"{"ip":"1.2.3.4"}"#, &views), Ok(()));
/// assert_eq!(record_object(b" \r\n", &views), Err(ObjectError::Blank));
/// assert!(matches!(record_object(b"{}", &views), Err(ObjectError::Invalid(_))));
/// assert_eq!(views.counter().estimate(), 1);
/// ```
///
/// # Errors
///
/// [`ObjectError::Blank`] for a body of whitespace only, [`ObjectError::Invalid`] for an
/// object that is not counted.
pub fn record_object(bytes: &[u8], views: &Views) -> Result<(), ObjectError> {
    record_object_with(bytes, FieldSpec::standard(), views)
}

/// [`record_object`], reading the fields as `spec` says.
///
/// # Errors
///
/// As [`record_object`].
pub fn record_object_with(
    bytes: &[u8],
    spec: FieldSpec<'_>,
    views: &Views,
) -> Result<(), ObjectError> {
    if bytes
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        return Err(ObjectError::Blank);
    }
    with_reader(|reader| record_log(reader, spec, bytes, views, views.arrival()))
        .map_err(ObjectError::Invalid)
}
