//! The Tokio peer of tests/programs/http_server.c for make bench: what a
//! user would write instead of fiberizing a thread-per-connection server,
//! one task per connection on Tokio's default multi-thread runtime (one
//! worker per CPU).  It answers the same bytes as the C server, so wrk
//! measures the runtimes and not the responses.
//!
//!   http_tokio [PORT]    127.0.0.1:PORT (0 or none: any free port)
//!
//! Prints "listening on PORT" once ready; exits 0 on SIGTERM or SIGINT.
use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BODY_BYTES: usize = 1024;

/// The whole response, built once: every request gets these bytes.
fn build_response() -> Vec<u8> {
    let pattern = b"fiberize demo body\n";
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\nConnection: keep-alive\r\n\r\n",
        BODY_BYTES
    )
    .into_bytes();
    r.extend((0..BODY_BYTES).map(|i| pattern[i % pattern.len()]));
    r
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// strcasestr for an ASCII needle, without copying the head.
fn contains_fold(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// One request per "\r\n\r\n" in an 8 KiB buffer, as the C server reads
/// them: a head that does not fit ends the connection.
async fn serve(mut c: TcpStream, response: Arc<Vec<u8>>) {
    let mut buf = [0u8; 8192];
    let mut have = 0;
    loop {
        // One byte kept free, as the C server keeps one for its '\0'.
        let n = match c.read(&mut buf[have..8191]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        have += n;
        let mut close_after = false;
        while let Some(end) = find(&buf[..have], b"\r\n\r\n") {
            if contains_fold(&buf[..end], b"connection: close") {
                close_after = true;
            }
            if c.write_all(&response).await.is_err() {
                return;
            }
            buf.copy_within(end + 4..have, 0);
            have -= end + 4;
        }
        if close_after || have == buf.len() - 1 {
            return;
        }
    }
}

extern "C" fn on_stop(_sig: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(0) }
}

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    // SAFETY: plain libc calls before any connection exists; as the C
    // server does, the soft fd limit goes up to the hard one and SIGTERM
    // exits 0 (SIGPIPE is ignored by the Rust runtime already).
    unsafe {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 {
            rl.rlim_cur = rl.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        }
        libc::signal(libc::SIGTERM, on_stop as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_stop as libc::sighandler_t);
    }
    let l = match TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("http_tokio: {}", e);
            std::process::exit(1);
        }
    };
    println!("listening on {}", l.local_addr().unwrap().port());
    let response = Arc::new(build_response());
    loop {
        match l.accept().await {
            Ok((c, _)) => {
                let _ = c.set_nodelay(true);
                tokio::spawn(serve(c, Arc::clone(&response)));
            }
            // Out of fds: wait for connections to close, as the C server does.
            Err(e)
                if e.raw_os_error() == Some(libc::EMFILE)
                    || e.raw_os_error() == Some(libc::ENFILE) =>
            {
                tokio::time::sleep(Duration::from_millis(1)).await
            }
            Err(e)
                if e.kind() == ErrorKind::ConnectionAborted
                    || e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("accept: {}", e);
                std::process::exit(1);
            }
        }
    }
}
