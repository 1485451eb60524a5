//! Listeners that hand tonic connections tagged with their [`Caller`]: a
//! Unix domain socket (preferred, E-02) and loopback TCP (E-03).
//!
//! Both are `Stream`s of [`Connection`]s, so they plug into any tonic
//! `Router` with `serve_with_incoming_shutdown`, and every request carries
//! the [`Caller`] in its extensions ([`Caller::from_request`]). That is what
//! lets the Envoy SDS service share the socket and the attestation.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_stream::Stream;
use tonic::transport::server::Connected;

use super::ServeError;
use super::caller::{Caller, CallerError};

/// How long to pause accepting after an accept error such as `EMFILE`, so
/// that running out of descriptors does not turn into a busy loop.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The mode SPIRE gives its Workload API socket: any local process may
/// connect; attestation, not file permissions, decides what it gets (S1).
pub const DEFAULT_SOCKET_MODE: u32 = 0o777;

type RejectHook = Arc<dyn Fn(&CallerError) + Send + Sync>;

/// A Unix domain socket listener whose connections carry their [`Caller`].
///
/// [`UnixSocketListener::bind`]:
/// - requires the parent directory to exist (it is not created: its
///   ownership and mode are the operator's decision);
/// - removes a stale socket file at the path, but refuses to delete
///   anything that is not a socket;
/// - binds, then sets the socket's mode ([`DEFAULT_SOCKET_MODE`] unless
///   given);
/// - from then on the kernel queues connections, so clients (Istio's
///   pilot-agent probes for one second, S2) can connect at once.
///
/// Accepting reads the peer's credentials; a peer without a visible PID
/// (PID 0) or whose `/proc/<pid>` cannot be opened is disconnected without a
/// gRPC answer (W3), and reported to [`UnixSocketListener::on_rejected`].
///
/// Dropping the listener removes the socket file, unless the path now holds
/// another file (a new server bound the same path).
pub struct UnixSocketListener {
    listener: Listener,
    path: PathBuf,
    // Device and inode of the socket file this listener created.
    file_id: (u64, u64),
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
    on_rejected: Option<RejectHook>,
}

/// The std listener until the first poll, then tokio's: binding needs no
/// runtime, and the conversion happens inside the one that serves.
enum Listener {
    Std(Option<std::os::unix::net::UnixListener>),
    Tokio(tokio::net::UnixListener),
}

impl fmt::Debug for UnixSocketListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixSocketListener")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl UnixSocketListener {
    /// Binds a socket at `path` with mode [`DEFAULT_SOCKET_MODE`].
    ///
    /// # Errors
    ///
    /// See [`UnixSocketListener::bind_with_mode`].
    pub fn bind(path: impl AsRef<Path>) -> Result<Self, ServeError> {
        Self::bind_with_mode(path, DEFAULT_SOCKET_MODE)
    }

    /// Binds a socket at `path` and gives it permission bits `mode` (Istio
    /// uses `0o666`, SPIRE `0o777`).
    ///
    /// # Errors
    ///
    /// [`ServeError::ParentDirectoryMissing`],
    /// [`ServeError::NotASocket`] when the path holds another kind of file,
    /// [`ServeError::SocketInUse`] when a server listens on it,
    /// [`ServeError::Io`] when removing the stale socket, binding or
    /// setting the mode fails.
    pub fn bind_with_mode(path: impl AsRef<Path>, mode: u32) -> Result<Self, ServeError> {
        let path = path.as_ref().to_path_buf();
        let io_err = |op: &'static str| {
            let path = path.clone();
            move |e: io::Error| ServeError::Io {
                op,
                path: path.display().to_string(),
                reason: e.to_string(),
            }
        };
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !parent.is_dir() {
            return Err(ServeError::ParentDirectoryMissing {
                path: parent.display().to_string(),
            });
        }
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_socket() => {
                // Stale only when nobody listens: a live server's socket is
                // not taken over (connect succeeds for a live one).
                match std::os::unix::net::UnixStream::connect(&path) {
                    Ok(_) => {
                        return Err(ServeError::SocketInUse {
                            path: path.display().to_string(),
                        });
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
                        ) => {}
                    Err(e) => return Err(io_err("probe existing socket")(e)),
                }
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("remove stale socket")(e)),
                }
            }
            Ok(_) => {
                return Err(ServeError::NotASocket {
                    path: path.display().to_string(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("inspect socket path")(e)),
        }
        let listener = std::os::unix::net::UnixListener::bind(&path).map_err(io_err("bind"))?;
        listener
            .set_nonblocking(true)
            .map_err(io_err("set non-blocking"))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(io_err("set socket mode"))?;
        let meta = std::fs::symlink_metadata(&path).map_err(io_err("inspect socket"))?;
        Ok(UnixSocketListener {
            listener: Listener::Std(Some(listener)),
            path,
            file_id: (meta.dev(), meta.ino()),
            pause: None,
            on_rejected: None,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Calls `hook` for every connection closed at accept because its
    /// caller could not be identified, for the embedder's logs. PID 0 is
    /// worth a clear log line: the caller sits in a PID namespace the server
    /// cannot see, and Istio's pilot-agent deletes a socket it cannot dial.
    #[must_use]
    pub fn on_rejected(mut self, hook: impl Fn(&CallerError) + Send + Sync + 'static) -> Self {
        self.on_rejected = Some(Arc::new(hook));
        self
    }

    fn poll_accept_stream(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<UnixStream>> {
        if let Listener::Std(std) = &mut self.listener {
            let Some(std) = std.take() else {
                return Poll::Ready(Err(io::Error::other("listener lost")));
            };
            self.listener = Listener::Tokio(tokio::net::UnixListener::from_std(std)?);
        }
        match &self.listener {
            Listener::Tokio(l) => l.poll_accept(cx).map_ok(|(stream, _)| stream),
            Listener::Std(_) => Poll::Ready(Err(io::Error::other("listener lost"))),
        }
    }
}

impl Stream for UnixSocketListener {
    type Item = io::Result<Connection>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(pause) = &mut this.pause {
                ready!(pause.as_mut().poll(cx));
                this.pause = None;
            }
            match ready!(this.poll_accept_stream(cx)) {
                Ok(stream) => match Caller::from_unix_stream(&stream) {
                    Ok(caller) => {
                        return Poll::Ready(Some(Ok(Connection {
                            io: Io::Unix(stream),
                            caller,
                        })));
                    }
                    // Dropping the stream closes the connection (W3).
                    Err(e) => {
                        if let Some(hook) = &this.on_rejected {
                            hook(&e);
                        }
                    }
                },
                Err(e) => {
                    this.pause = Some(Box::pin(tokio::time::sleep(ACCEPT_ERROR_PAUSE)));
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}

impl Drop for UnixSocketListener {
    fn drop(&mut self) {
        // Only our own socket: a newer server may have replaced the file.
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.file_type().is_socket() && (m.dev(), m.ino()) == self.file_id);
        if ours {
            // Nothing useful to do with an error while dropping.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A TCP listener whose connections carry their [`Caller`] (the peer
/// address). TCP gives the server nothing but the source address to
/// identify a workload, so the specification allows it only where that
/// address is trustworthy (E-03): [`TcpSocketListener::bind`] accepts
/// loopback addresses only.
pub struct TcpSocketListener {
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl fmt::Debug for TcpSocketListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpSocketListener")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl TcpSocketListener {
    /// Binds a loopback address (`127.0.0.0/8`, `::1`); port 0 picks a free
    /// port ([`TcpSocketListener::local_addr`] tells which).
    ///
    /// # Errors
    ///
    /// [`ServeError::NotLoopback`] for any other address (E-03), and
    /// [`ServeError::Io`] when binding fails.
    pub async fn bind(addr: SocketAddr) -> Result<Self, ServeError> {
        if !addr.ip().to_canonical().is_loopback() {
            return Err(ServeError::NotLoopback { addr });
        }
        Self::bind_non_loopback(addr).await
    }

    /// Binds any address. Only where the network lets the server trust the
    /// source address of a connection (E-03), for example a link-local
    /// address that only the host's workloads can reach.
    ///
    /// # Errors
    ///
    /// [`ServeError::Io`] when binding fails.
    pub async fn bind_non_loopback(addr: SocketAddr) -> Result<Self, ServeError> {
        let io_err = |op: &'static str| {
            move |e: io::Error| ServeError::Io {
                op,
                path: addr.to_string(),
                reason: e.to_string(),
            }
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(io_err("bind"))?;
        let local_addr = listener.local_addr().map_err(io_err("local address"))?;
        Ok(TcpSocketListener {
            listener,
            local_addr,
            pause: None,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Stream for TcpSocketListener {
    type Item = io::Result<Connection>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(pause) = &mut this.pause {
            ready!(pause.as_mut().poll(cx));
            this.pause = None;
        }
        match ready!(this.listener.poll_accept(cx)) {
            Ok((stream, peer)) => {
                // gRPC streams are latency-sensitive and small.
                let _ = stream.set_nodelay(true);
                Poll::Ready(Some(Ok(Connection {
                    io: Io::Tcp(stream),
                    caller: Caller::from_tcp_peer(peer),
                })))
            }
            Err(e) => {
                this.pause = Some(Box::pin(tokio::time::sleep(ACCEPT_ERROR_PAUSE)));
                Poll::Ready(Some(Err(e)))
            }
        }
    }
}

/// An accepted connection and its [`Caller`]; tonic puts the caller in the
/// extensions of every request on it (`Connected::ConnectInfo`).
pub struct Connection {
    io: Io,
    caller: Caller,
}

enum Io {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("caller", &self.caller)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// The caller on the other end.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }
}

impl Connected for Connection {
    type ConnectInfo = Caller;

    fn connect_info(&self) -> Caller {
        self.caller.clone()
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tcp(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tcp(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Unix(s) => s.is_write_vectored(),
            Io::Tcp(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Unix(s) => Pin::new(s).poll_flush(cx),
            Io::Tcp(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tcp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
