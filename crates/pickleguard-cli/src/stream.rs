//! Reading what is not a regular file (standard input, a FIFO, a character device) with a size
//! cap and a read timeout: `/dev/zero` would otherwise fill memory, and a FIFO nobody writes to
//! would block the scan forever (docs/cli.md, "Streams").

use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;

/// Bytes read from one stream before the scan stops reading it.
pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;
/// How long a stream may stay silent (no byte, no end) before the scan gives up on it.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(30);

/// The bounds for reading a stream (from `PICKLEGUARD_STREAM_MAX_BYTES` and
/// `PICKLEGUARD_STREAM_TIMEOUT`, seconds, when set).
#[derive(Clone, Copy, Debug)]
pub struct StreamLimits {
    pub max_bytes: u64,
    pub idle: Duration,
}

impl StreamLimits {
    pub fn from_env() -> StreamLimits {
        let num = |k: &str| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        StreamLimits {
            max_bytes: num("PICKLEGUARD_STREAM_MAX_BYTES")
                .filter(|v| *v >= 0.0)
                .map_or(DEFAULT_MAX_BYTES, |v| v as u64),
            idle: num("PICKLEGUARD_STREAM_TIMEOUT")
                .filter(|v| v.is_finite() && *v > 0.0)
                .map_or(DEFAULT_IDLE, Duration::from_secs_f64),
        }
    }
}

/// What a stream gave.
pub struct StreamRead {
    pub data: Vec<u8>,
    /// The stream had more than `max_bytes`: `data` is its first `max_bytes`.
    pub truncated: bool,
}

/// Read a stream (`None`: standard input) to its end, at most `max_bytes + 1` bytes, waiting
/// at most `idle` for each piece. A FIFO is opened without blocking, so that one with no
/// writer times out instead of hanging in `open`.
pub fn read_stream(path: Option<&Path>, limits: StreamLimits) -> io::Result<StreamRead> {
    match path {
        Some(p) => {
            let f = open_nonblocking(p)?;
            read_bounded(f, limits)
        }
        None => read_bounded(stdin_file()?, limits),
    }
}

/// Standard input as a file of its own (a duplicate descriptor): read without the buffer
/// `Stdin` keeps, which `poll` could not see.
#[cfg(unix)]
fn stdin_file() -> io::Result<std::fs::File> {
    use std::os::fd::AsFd;
    Ok(std::fs::File::from(
        io::stdin().as_fd().try_clone_to_owned()?,
    ))
}

#[cfg(not(unix))]
fn stdin_file() -> io::Result<io::Stdin> {
    Ok(io::stdin())
}

#[cfg(unix)]
fn open_nonblocking(p: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(p)
}

#[cfg(not(unix))]
fn open_nonblocking(p: &Path) -> io::Result<std::fs::File> {
    std::fs::File::open(p)
}

#[cfg(unix)]
fn read_bounded<R: Read + std::os::fd::AsRawFd>(
    mut r: R,
    limits: StreamLimits,
) -> io::Result<StreamRead> {
    let fd = r.as_raw_fd();
    let mut data = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let room = (limits.max_bytes + 1).saturating_sub(data.len() as u64);
        if room == 0 {
            data.truncate(limits.max_bytes as usize);
            return Ok(StreamRead {
                data,
                truncated: true,
            });
        }
        wait_readable(fd, limits.idle)?;
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        match r.read(&mut buf[..want]) {
            Ok(0) => {
                return Ok(StreamRead {
                    data,
                    truncated: false,
                })
            }
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(not(unix))]
fn read_bounded<R: Read>(r: R, limits: StreamLimits) -> io::Result<StreamRead> {
    let mut data = Vec::new();
    r.take(limits.max_bytes + 1).read_to_end(&mut data)?;
    let truncated = data.len() as u64 > limits.max_bytes;
    data.truncate(limits.max_bytes as usize);
    Ok(StreamRead { data, truncated })
}

/// Wait until `fd` has data or its end (or an error) to report, at most `idle`.
#[cfg(unix)]
fn wait_readable(fd: std::os::fd::RawFd, idle: Duration) -> io::Result<()> {
    let ms = libc::c_int::try_from(idle.as_millis()).unwrap_or(libc::c_int::MAX);
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n > 0 {
            return Ok(());
        }
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no data for {} s (a FIFO with no writer?); PICKLEGUARD_STREAM_TIMEOUT sets the wait",
                    idle.as_secs_f64()
                ),
            ));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
