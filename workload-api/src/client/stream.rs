//! The stream of decoded updates a `watch_*` call returns.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Sleep;
use tonic::codec::Streaming;
use tonic::codegen::tokio_stream::Stream;

use super::ClientError;
use crate::decode::DecodeError;

/// The updates of one Workload API stream, decoded: each item is the
/// complete new state (W-05), or the reason a message was refused.
///
/// A message that breaks the protocol's rules yields
/// `Some(Err(ClientError::Decode(_)))` and the stream goes on (the message
/// is discarded, W-11). The first message must come within the client's
/// timeout, or the stream yields [`ClientError::Timeout`] and ends. A status
/// from the server yields [`ClientError::Status`] and ends the stream; the
/// server closing it without a status ends it with `None`.
///
/// Read it with [`UpdateStream::next`], or as a [`Stream`]. Dropping it
/// cancels the call.
pub struct UpdateStream<T> {
    inner: Pin<Box<dyn Stream<Item = Result<T, ClientError>> + Send>>,
}

impl<T> fmt::Debug for UpdateStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateStream").finish_non_exhaustive()
    }
}

impl<T: Send + 'static> UpdateStream<T> {
    pub(crate) fn new<M>(
        streaming: Streaming<M>,
        decode: fn(&M) -> Result<T, DecodeError>,
        first_timeout: Duration,
    ) -> Self
    where
        M: Send + 'static,
    {
        UpdateStream {
            inner: Box::pin(Decoded {
                streaming,
                decode,
                first_deadline: Some(Box::pin(tokio::time::sleep(first_timeout))),
                first_timeout,
                done: false,
            }),
        }
    }
}

impl<T> UpdateStream<T> {
    /// The next update, or `None` once the stream has ended.
    pub async fn next(&mut self) -> Option<Result<T, ClientError>> {
        std::future::poll_fn(|cx| self.inner.as_mut().poll_next(cx)).await
    }
}

impl<T> Stream for UpdateStream<T> {
    type Item = Result<T, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

struct Decoded<M, T> {
    streaming: Streaming<M>,
    decode: fn(&M) -> Result<T, DecodeError>,
    /// Runs until the first message arrives.
    first_deadline: Option<Pin<Box<Sleep>>>,
    first_timeout: Duration,
    done: bool,
}

impl<M, T> Stream for Decoded<M, T> {
    type Item = Result<T, ClientError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.streaming).poll_next(cx) {
            Poll::Ready(Some(Ok(message))) => {
                this.first_deadline = None;
                Poll::Ready(Some((this.decode)(&message).map_err(ClientError::from)))
            }
            Poll::Ready(Some(Err(status))) => {
                this.done = true;
                Poll::Ready(Some(Err(status.into())))
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                if let Some(deadline) = &mut this.first_deadline {
                    if deadline.as_mut().poll(cx).is_ready() {
                        this.done = true;
                        return Poll::Ready(Some(Err(ClientError::Timeout {
                            after: this.first_timeout,
                        })));
                    }
                }
                Poll::Pending
            }
        }
    }
}
