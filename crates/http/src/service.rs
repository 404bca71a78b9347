//! [`ConnectionService`]: what a service must be for [`serve`](crate::serve) to
//! run it on a connection. Its own module so that the accept loop
//! (`server.rs`) and the connection task (`connection.rs`) both depend on it,
//! and not on each other.

use bytes::Bytes;
use hyper::body::Body;
use hyper::service::Service;
use hyper::{Request, Response};

use crate::request_body::RequestBody;

/// Boxed error of a service or a response body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a connection's service must be to run in a connection task: a hyper
/// service of [`RequestBody`] requests whose future and response body can
/// move between threads. Implemented for every service that qualifies; it
/// only names the bounds [`serve`](crate::serve) and its parts share.
pub trait ConnectionService:
    Service<
        Request<RequestBody>,
        Response = Response<Self::ResponseBody>,
        Future: Send + 'static,
        Error: Into<BoxError>,
    > + Send
    + 'static
{
    /// The body of its responses.
    /// Its data is `Bytes`, so that the connection task can answer some
    /// requests itself (`400 missing_host`) with a [`ResponseBody`](crate::ResponseBody).
    type ResponseBody: Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static;
}

impl<S, B> ConnectionService for S
where
    S: Service<Request<RequestBody>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type ResponseBody = B;
}
