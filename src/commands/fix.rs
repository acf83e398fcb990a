//! fix (group 2, command 80). (Being written.)

use crate::protocol::{Response, Status};
use crate::store::CoinStore;

use super::{Node, Request};

/// Answers a fix request.
pub fn fix<S: CoinStore + ?Sized>(
    _node: &Node<'_, S>,
    _request: &Request<'_>,
) -> Result<Response, Status> {
    Err(Status::Internal)
}
