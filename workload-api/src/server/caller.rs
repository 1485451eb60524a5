//! Who is calling: the peer credentials of an accepted connection, and the
//! liveness check that ties an RPC to the process that connected (W3).

use std::fmt;
use std::net::SocketAddr;
#[cfg(target_os = "linux")]
use std::sync::Arc;

/// The workload on the other end of a connection, as the kernel reports it.
///
/// On a Unix socket: the process ID, user ID and group ID of the process
/// that connected (`SO_PEERCRED`, read once at accept). On Linux the server
/// also keeps the process's `/proc/<pid>` directory open and records its
/// start time, so that [`Caller::check_alive`] can tell the original process
/// from a later one that reused its PID. On TCP (loopback only, E-03): the
/// peer's socket address.
///
/// The listeners of this module attach a `Caller` to every connection; a
/// tonic service reads it with [`Caller::from_request`], so another service
/// on the same socket (Envoy SDS) attests callers the same way.
#[derive(Clone)]
pub struct Caller {
    peer: Peer,
}

#[derive(Clone)]
enum Peer {
    Unix {
        pid: u32,
        uid: u32,
        gid: u32,
        #[cfg(target_os = "linux")]
        process: Option<Arc<linux::ProcessHandle>>,
    },
    Tcp(SocketAddr),
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.peer {
            Peer::Unix { pid, uid, gid, .. } => f
                .debug_struct("Caller")
                .field("pid", pid)
                .field("uid", uid)
                .field("gid", gid)
                .finish(),
            Peer::Tcp(addr) => f.debug_struct("Caller").field("tcp_peer", addr).finish(),
        }
    }
}

/// Why a connection's caller could not be identified, or is no longer the
/// process that connected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallerError {
    /// The socket gave no peer credentials.
    #[error("the socket has no peer credentials: {reason}")]
    NoCredentials {
        /// The operating system's error.
        reason: String,
    },
    /// The kernel reported no PID, or PID 0: the caller is in a PID
    /// namespace the server cannot see (a Kubernetes pod without
    /// `hostPID`). Its connection is closed at accept (W3).
    #[error("the caller's PID is not visible (PID namespace without hostPID?)")]
    PidNotVisible,
    /// `/proc/<pid>` of the caller could not be opened or read.
    #[error("cannot inspect process {pid}: {reason}")]
    ProcUnreadable {
        /// The caller's PID.
        pid: u32,
        /// The operating system's error.
        reason: String,
    },
    /// The process that connected has exited.
    #[error("process {pid} has exited")]
    ProcessExited {
        /// The caller's PID.
        pid: u32,
    },
    /// The PID now belongs to another process (its start time changed).
    #[error("process {pid} was replaced by another process with the same PID")]
    ProcessReplaced {
        /// The caller's PID.
        pid: u32,
    },
    /// `/proc/<pid>` is owned by another user or group than the one that
    /// connected.
    #[error("process {pid} is owned by uid {uid}/gid {gid}, not by the connecting credentials")]
    OwnerMismatch {
        /// The caller's PID.
        pid: u32,
        /// The owner uid of `/proc/<pid>`.
        uid: u32,
        /// The owner gid of `/proc/<pid>`.
        gid: u32,
    },
}

impl Caller {
    /// A caller known by its credentials only, for providers' tests and for
    /// transports of your own. [`Caller::check_alive`] then checks, on
    /// Linux, that `/proc/<pid>` exists and is owned by `uid`/`gid`, but
    /// cannot detect PID reuse.
    pub fn from_unix_credentials(pid: u32, uid: u32, gid: u32) -> Caller {
        Caller {
            peer: Peer::Unix {
                pid,
                uid,
                gid,
                #[cfg(target_os = "linux")]
                process: None,
            },
        }
    }

    /// A caller on TCP, known by its address.
    pub fn from_tcp_peer(addr: SocketAddr) -> Caller {
        Caller {
            peer: Peer::Tcp(addr),
        }
    }

    /// Identifies the peer of an accepted Unix stream: its credentials and,
    /// on Linux, a handle on `/proc/<pid>` with the process start time
    /// (field 22 of `/proc/<pid>/stat`). Cheap (a few system calls), so it
    /// can run at accept without delaying the handshake (S2).
    ///
    /// # Errors
    ///
    /// [`CallerError::NoCredentials`], [`CallerError::PidNotVisible`] for a
    /// missing PID or PID 0, [`CallerError::ProcUnreadable`] when
    /// `/proc/<pid>` cannot be opened (Linux). The connection should then be
    /// closed (W3).
    pub fn from_unix_stream(stream: &tokio::net::UnixStream) -> Result<Caller, CallerError> {
        let cred = stream.peer_cred().map_err(|e| CallerError::NoCredentials {
            reason: e.to_string(),
        })?;
        let pid = cred
            .pid()
            .and_then(|p| u32::try_from(p).ok())
            .filter(|&p| p != 0)
            .ok_or(CallerError::PidNotVisible)?;
        Ok(Caller {
            peer: Peer::Unix {
                pid,
                uid: cred.uid(),
                gid: cred.gid(),
                #[cfg(target_os = "linux")]
                process: Some(Arc::new(linux::ProcessHandle::open(pid)?)),
            },
        })
    }

    /// The caller attached to a request by this module's listeners, or
    /// `None` when the request came through another transport.
    pub fn from_request<T>(request: &tonic::Request<T>) -> Option<&Caller> {
        request.extensions().get::<Caller>()
    }

    /// The process ID (Unix socket callers).
    pub fn pid(&self) -> Option<u32> {
        match self.peer {
            Peer::Unix { pid, .. } => Some(pid),
            Peer::Tcp(_) => None,
        }
    }

    /// The user ID the process connected with (Unix socket callers).
    pub fn uid(&self) -> Option<u32> {
        match self.peer {
            Peer::Unix { uid, .. } => Some(uid),
            Peer::Tcp(_) => None,
        }
    }

    /// The group ID the process connected with (Unix socket callers).
    pub fn gid(&self) -> Option<u32> {
        match self.peer {
            Peer::Unix { gid, .. } => Some(gid),
            Peer::Tcp(_) => None,
        }
    }

    /// The peer address (TCP callers).
    pub fn tcp_peer_addr(&self) -> Option<SocketAddr> {
        match self.peer {
            Peer::Tcp(addr) => Some(addr),
            Peer::Unix { .. } => None,
        }
    }

    /// Checks that the caller is still the process that connected (W3):
    /// on Linux, that the `/proc/<pid>` directory opened at accept can still
    /// be read (the process has not exited), that its start time is the one
    /// recorded at accept (the PID was not reused), and that it is owned by
    /// the uid/gid of the peer credentials. A server calls this once per
    /// RPC, after attestation, so the attested selectors belong to the
    /// process it answers. Always `Ok` for TCP callers and on other systems.
    ///
    /// # Errors
    ///
    /// [`CallerError::ProcessExited`], [`CallerError::ProcessReplaced`],
    /// [`CallerError::OwnerMismatch`], [`CallerError::ProcUnreadable`].
    pub fn check_alive(&self) -> Result<(), CallerError> {
        match &self.peer {
            Peer::Tcp(_) => Ok(()),
            #[cfg(target_os = "linux")]
            Peer::Unix {
                pid,
                uid,
                gid,
                process,
            } => match process {
                Some(handle) => handle.check(*uid, *gid),
                None => linux::check_by_path(*pid, *uid, *gid),
            },
            #[cfg(not(target_os = "linux"))]
            Peer::Unix { .. } => Ok(()),
        }
    }
}

/// Field 22 (`starttime`) of a `/proc/<pid>/stat` line. The second field,
/// the command name, is in parentheses and may itself contain spaces and
/// parentheses, so fields are counted from the last `)`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn stat_start_time(stat: &str) -> Option<u64> {
    let (_, after_comm) = stat.rsplit_once(')')?;
    // After the `)`: field 3 (state) is the first, so field 22 is the 20th.
    after_comm.split_ascii_whitespace().nth(19)?.parse().ok()
}

#[cfg(target_os = "linux")]
mod linux {
    use std::fs::File;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{FileExt, MetadataExt};

    use super::{CallerError, stat_start_time};

    /// An open `/proc/<pid>` directory, its `stat` file, and the start time
    /// read through it.
    pub(super) struct ProcessHandle {
        pid: u32,
        dir: File,
        // Held open so each check is one pread, not an open, a path walk
        // and a close (that was a fifth of the server's CPU per unary call).
        stat: File,
        start_time: u64,
    }

    impl ProcessHandle {
        pub(super) fn open(pid: u32) -> Result<Self, CallerError> {
            let unreadable = |e: std::io::Error| CallerError::ProcUnreadable {
                pid,
                reason: e.to_string(),
            };
            let dir = File::open(format!("/proc/{pid}")).map_err(unreadable)?;
            // `/proc/self/fd/N` is a "magic link" to the open directory
            // itself, so this opens `stat` inside the directory held, not
            // inside whatever `/proc/<pid>` names now. std has no openat;
            // this is its safe equivalent on procfs.
            let stat = File::open(format!("/proc/self/fd/{}/stat", dir.as_raw_fd()))
                .map_err(unreadable)?;
            let start_time = read_start_time(&stat, pid)?;
            Ok(ProcessHandle {
                pid,
                dir,
                stat,
                start_time,
            })
        }

        pub(super) fn check(&self, uid: u32, gid: u32) -> Result<(), CallerError> {
            let pid = self.pid;
            // Read through the descriptor held since accept: once the process
            // is gone, reading its `stat` fails even if the PID has been
            // reused, because the descriptor names the old process.
            if read_start_time(&self.stat, pid)? != self.start_time {
                return Err(CallerError::ProcessReplaced { pid });
            }
            let meta = self
                .dir
                .metadata()
                .map_err(|_| CallerError::ProcessExited { pid })?;
            check_owner(pid, meta.uid(), meta.gid(), uid, gid)
        }
    }

    /// The start time in the open `/proc/<pid>/stat` file `stat`, read
    /// afresh from its start.
    fn read_start_time(stat: &File, pid: u32) -> Result<u64, CallerError> {
        // The line is at most a few hundred bytes (52 numeric fields and a
        // command name of at most 64 bytes); a full buffer is refused
        // rather than parsed truncated.
        let mut buf = [0u8; 4096];
        let len = stat
            .read_at(&mut buf, 0)
            .map_err(|_| CallerError::ProcessExited { pid })?;
        let unexpected = || CallerError::ProcUnreadable {
            pid,
            reason: "unexpected /proc/<pid>/stat format".to_owned(),
        };
        if len == 0 || len == buf.len() {
            return Err(unexpected());
        }
        let line = buf.get(..len).unwrap_or_default();
        // The command name may hold any bytes (even invalid UTF-8); only the
        // part from its closing parenthesis on is read as text.
        let from_paren = line
            .iter()
            .rposition(|&b| b == b')')
            .and_then(|at| line.get(at..))
            .ok_or_else(unexpected)?;
        let tail = std::str::from_utf8(from_paren).map_err(|_| unexpected())?;
        stat_start_time(tail).ok_or_else(unexpected)
    }

    /// The check for callers built from bare credentials: the process
    /// exists and is owned by the credentials (PID reuse is not detected).
    pub(super) fn check_by_path(pid: u32, uid: u32, gid: u32) -> Result<(), CallerError> {
        let meta = std::fs::metadata(format!("/proc/{pid}"))
            .map_err(|_| CallerError::ProcessExited { pid })?;
        check_owner(pid, meta.uid(), meta.gid(), uid, gid)
    }

    fn check_owner(
        pid: u32,
        owner_uid: u32,
        owner_gid: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(), CallerError> {
        if owner_uid == uid && owner_gid == gid {
            Ok(())
        } else {
            Err(CallerError::OwnerMismatch {
                pid,
                uid: owner_uid,
                gid: owner_gid,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn w_3_start_time_is_field_22_counted_from_the_last_parenthesis() {
        // Fields 3..=21 are numbered placeholders; field 22 is 777.
        let tail: Vec<String> = (3..=21).map(|n| n.to_string()).collect();
        let tail = tail.join(" ");
        for comm in ["(bash)", "(a b)", "(x) y (z))", "()", "(:) 1 2 3)"] {
            let line = format!("1234 {comm} {tail} 777 23 24 25\n");
            assert_eq!(stat_start_time(&line), Some(777), "{comm}");
        }
        assert_eq!(stat_start_time("1234 (bash) S 1 2"), None);
        assert_eq!(stat_start_time("no parenthesis at all"), None);
        let bad = format!("1 (x) {tail} notanumber");
        assert_eq!(stat_start_time(&bad), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn w_3_own_process_is_alive_and_a_reaped_child_is_not() {
        let me = std::process::id();
        let handle = linux::ProcessHandle::open(me).unwrap();
        let meta = std::fs::metadata(format!("/proc/{me}")).unwrap();
        use std::os::unix::fs::MetadataExt;
        handle.check(meta.uid(), meta.gid()).unwrap();
        assert!(matches!(
            handle.check(meta.uid().wrapping_add(1), meta.gid()),
            Err(CallerError::OwnerMismatch { .. })
        ));

        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let child_handle = linux::ProcessHandle::open(child.id()).unwrap();
        child_handle.check(meta.uid(), meta.gid()).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            child_handle.check(meta.uid(), meta.gid()),
            Err(CallerError::ProcessExited { pid: child.id() })
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn w_3_pid_without_process_cannot_be_opened() {
        // PIDs are below 2^22 on Linux.
        assert!(matches!(
            linux::ProcessHandle::open(u32::MAX - 1),
            Err(CallerError::ProcUnreadable { .. })
        ));
        let caller = Caller::from_unix_credentials(u32::MAX - 1, 0, 0);
        assert!(caller.check_alive().is_err());
    }

    #[test]
    fn tcp_callers_have_no_credentials() {
        let caller = Caller::from_tcp_peer("127.0.0.1:9".parse().unwrap());
        assert_eq!(caller.pid(), None);
        assert_eq!(caller.uid(), None);
        assert_eq!(caller.tcp_peer_addr(), Some("127.0.0.1:9".parse().unwrap()));
        assert_eq!(caller.check_alive(), Ok(()));
    }
}
