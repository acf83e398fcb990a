//! Loopback peer RAIDAs: a listener thread that hands each connection to a script
//! ([`FakePeer`]), and the peers that never serve: a port that refuses ([`down_port`]), a
//! full accept queue where a connect hangs ([`black_hole`]), and a listener that only
//! tells whether a request reached it ([`Untouchable`]).

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::request::is_validate_ticket;

/// A listener on 127.0.0.1 whose accept thread hands every connection to `serve`, until
/// dropped. `serve` runs on the accept thread (connections are served one at a time);
/// a script that serves connections side by side spawns its own thread per connection.
pub struct FakePeer {
    pub addr: SocketAddrV4,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakePeer {
    pub fn spawn(mut serve: impl FnMut(TcpStream) + Send + 'static) -> FakePeer {
        let (listener, addr) = listen();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        serve(stream);
                    }
                }
            })
        };
        FakePeer {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which sees `stop` and leaves. Threads a script spawned
        // end on their own (the client closes, or their read timeout).
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A listener on an ephemeral loopback port.
pub fn listen() -> (TcpListener, SocketAddrV4) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = match listener.local_addr().unwrap() {
        SocketAddr::V4(a) => a,
        other => panic!("not IPv4: {other}"),
    };
    (listener, addr)
}

/// An unbound-elsewhere loopback socket with its address.
fn loopback_socket() -> (socket2::Socket, SocketAddrV4) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let addr = socket.local_addr().unwrap().as_socket_ipv4().unwrap();
    (socket, addr)
}

/// A port that refuses connections: bound (so no one else gets it) but not listening.
pub fn down_port() -> (socket2::Socket, SocketAddrV4) {
    loopback_socket()
}

/// A listener whose accept queue is full and never drained: a connect to it hangs in
/// SYN-SENT, like a peer behind a firewall that drops packets. Keep all three alive.
pub fn black_hole() -> (socket2::Socket, TcpStream, SocketAddrV4) {
    let (socket, addr) = loopback_socket();
    socket.listen(0).unwrap();
    let filler = TcpStream::connect(addr).unwrap();
    (socket, filler, addr)
}

/// A listener nobody serves: a fix must never connect to it.
pub struct Untouchable {
    listener: TcpListener,
    pub addr: SocketAddrV4,
}

impl Untouchable {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Untouchable {
        let (listener, addr) = listen();
        listener.set_nonblocking(true).unwrap();
        Untouchable { listener, addr }
    }

    /// True when a validate-ticket request reached it. A fix that has returned made
    /// every connect it started (loopback connects complete inside the call) and sent
    /// its request right after; stray connections from elsewhere are not counted.
    pub fn was_contacted(&self) -> bool {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(5)))
                        .unwrap();
                    let mut head = [0u8; 6];
                    if stream.read_exact(&mut head).is_ok() && is_validate_ticket(&head) {
                        return true;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(e) => panic!("accept: {e}"),
            }
        }
    }
}
